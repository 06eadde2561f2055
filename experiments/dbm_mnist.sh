#!/usr/bin/env bash
# The 784-500-1000 deep Boltzmann machine on MNIST (Salakhutdinov & Hinton
# 2009: test log-probability bound -84.62 nats): the pretraining stack
# (models/dbm-mnist-stack.toml), the DBM composed from it and trained with
# mean field and persistent chains (models/dbm-mnist.toml), then the bound
# with log Z by AIS at 20,000 and at 40,000 temperatures (100 runs each).
# Every step resumes where an earlier run stopped (checkpoints in out/; a
# machine that lost out/ starts from the checkpoints a session committed,
# CKPTS, default experiments/results/cpu-2026-12-06/checkpoints);
# EPOCHS=n trains the DBM to n epochs only (a later run continues it).
# Results: experiments/results/$RESULTS/dbm-*.
#
# usage: [EPOCHS=n] experiments/dbm_mnist.sh [-- --backend cpu|gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS="experiments/results/${RESULTS:-cpu-2026-12-03}"
mkdir -p "$RESULTS" out
[ "${1:-}" = "--" ] && shift
extra=("$@")
cargo build --release --quiet
bin=target/release/ebmkit
# A stack that stopped mid-way has layer checkpoints but no model.safetensors
# yet; --resume continues its unfinished layer.
resume() { { [ -f "$1/model.safetensors" ] || [ -d "$1/layers" ]; } && echo "--resume $1/model.safetensors" || true; }
epochs=()
[ -z "${EPOCHS:-}" ] || epochs=(--epochs "$EPOCHS")
CKPTS="${CKPTS:-experiments/results/cpu-2026-12-06/checkpoints}"
for m in dbm-mnist-stack dbm-mnist; do
  if [ ! -f "out/$m/model.safetensors" ] && [ -f "$CKPTS/$m.safetensors" ]; then
    mkdir -p "out/$m" && cp "$CKPTS/$m.safetensors" "out/$m/model.safetensors"
  fi
done

# Once the DBM exists its stack is done: a stack's model file without its
# layers/ folder would train its layers again.
if [ ! -f out/dbm-mnist/model.safetensors ]; then
  $bin train models/dbm-mnist-stack.toml --out out/dbm-mnist-stack --quiet --no-eval \
    $(resume out/dbm-mnist-stack) "${extra[@]}" 2>&1 | tee -a "$RESULTS/dbm-stack.log"
fi
$bin train models/dbm-mnist.toml --init out/dbm-mnist-stack/model.safetensors \
  --out out/dbm-mnist --quiet --no-eval "${epochs[@]}" $(resume out/dbm-mnist) "${extra[@]}" \
  2>&1 | tee -a "$RESULTS/dbm-train.log"
cp out/dbm-mnist/curves.csv "$RESULTS/dbm.curves.csv"
cp out/dbm-mnist/samples.png "$RESULTS/dbm-samples.png"
cp out/dbm-mnist/filters.png "$RESULTS/dbm-filters.png"
for betas in 20000 40000; do
  echo "== $betas temperatures" | tee -a "$RESULTS/dbm-eval.log"
  $bin eval out/dbm-mnist/model.safetensors --betas $betas "${extra[@]}" 2>&1 | tee -a "$RESULTS/dbm-eval.log"
done
