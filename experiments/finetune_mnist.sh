#!/usr/bin/env bash
# Pretrain, fine-tune and compare with the randomly initialised twin, on
# MNIST (50,000 train / 10,000 validation / 10,000 test):
#   sda3     stacked denoising AEs, 3 x 1000 (Vincent et al. 2010: 1.28 %)
#   cae      one contractive AE of 1000 units (Rifai et al. 2011: 1.14 %)
#   dbn-mlp  RBM stack 500-500-2000 (Hinton & Salakhutdinov 2006: 1.2 %)
# Each step resumes where an earlier run stopped (checkpoints in out/).
# The twin gets the same recipe (epochs, early stopping, learning rate)
# without the stack. Results: experiments/results/$RESULTS/.
#
# usage: experiments/finetune_mnist.sh [sda3|cae|dbn-mlp ...] [-- --backend cpu|gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS="experiments/results/${RESULTS:-cpu-2026-12-03}"
mkdir -p "$RESULTS" out
names=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do names+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
extra=("$@")
[ ${#names[@]} -gt 0 ] || names=(cae sda3 dbn-mlp)
cargo build --release --quiet
bin=target/release/ebmkit
resume() { [ -f "$1/model.safetensors" ] && echo "--resume $1/model.safetensors" || true; }

for n in "${names[@]}"; do
  $bin train "models/$n-stack.toml" --out "out/$n-stack" --quiet $(resume "out/$n-stack") "${extra[@]}" \
    2>&1 | tee -a "$RESULTS/$n-stack.log"
  $bin finetune "out/$n-stack/model.safetensors" --recipe "models/$n-finetune.toml" \
    --out "out/$n-pretrained" --quiet $(resume "out/$n-pretrained") "${extra[@]}" \
    2>&1 | tee -a "$RESULTS/$n-pretrained.log"
  $bin train "models/$n-finetune.toml" --out "out/$n-random" --quiet $(resume "out/$n-random") "${extra[@]}" \
    2>&1 | tee -a "$RESULTS/$n-random.log"
  for run in "$n-pretrained" "$n-random"; do
    cp "out/$run/curves.csv" "$RESULTS/$run.curves.csv"
    cp "out/$run/curve-error.png" "$RESULTS/$run.curve-error.png"
  done
  echo "== $n"
  grep -h "^best validation epoch\|^test:" "$RESULTS/$n-pretrained.log" | tail -2 | sed 's/^/pretrained: /'
  grep -h "^best validation epoch\|^test:" "$RESULTS/$n-random.log" | tail -2 | sed 's/^/random:     /'
done
