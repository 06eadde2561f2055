#!/usr/bin/env bash
# The deep auto-encoder of Hinton & Salakhutdinov (2006) on MNIST: the RBM
# stack (models/deepae-rbm-stack.toml), unrolled and fine-tuned
# (models/deepae-finetune.toml), the same net from random initialisation,
# and PCA with 30 components; every step resumes where an earlier run of
# this script stopped. Results: experiments/results/$RESULTS/.
#
# usage: experiments/deep_autoencoder.sh [--backend cpu|gpu]   (RESULTS=cpu-2026-12-03 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS="experiments/results/${RESULTS:-cpu-2026-12-03}"
mkdir -p "$RESULTS" out
cargo build --release --quiet
bin=target/release/ebmkit
extra=("$@")

# Resume a run from its output folder's checkpoint when there is one.
resume() { [ -f "$1/model.safetensors" ] && echo "--resume $1/model.safetensors" || true; }

$bin train models/deepae-rbm-stack.toml --out out/deepae-stack --quiet $(resume out/deepae-stack) "${extra[@]}" \
  2>&1 | tee -a "$RESULTS/deepae-stack.log"
$bin finetune out/deepae-stack/model.safetensors --recipe models/deepae-finetune.toml \
  --out out/deepae-pretrained --quiet $(resume out/deepae-pretrained) "${extra[@]}" \
  2>&1 | tee -a "$RESULTS/deepae-pretrained.log"
$bin train models/deepae-finetune.toml --out out/deepae-random --quiet $(resume out/deepae-random) "${extra[@]}" \
  2>&1 | tee -a "$RESULTS/deepae-random.log"
cargo run --release --quiet --example pca_mnist -- 30 | tee "$RESULTS/pca30.txt"

for run in deepae-pretrained deepae-random; do
  cp out/$run/curves.csv "$RESULTS/$run.curves.csv"
  cp out/$run/reconstructions.png "$RESULTS/$run.reconstructions.png"
  cp out/$run/curve-squared_error.png "$RESULTS/$run.curve-squared_error.png"
done
echo "published (test squared error per digit): deep AE 3.00, logistic PCA 8.01, PCA 13.87"
grep -h "^test:" "$RESULTS/deepae-pretrained.log" | tail -1 | sed 's/^/pretrained + fine-tuned: /'
grep -h "^test:" "$RESULTS/deepae-random.log" | tail -1 | sed 's/^/randomly initialised:    /'
cat "$RESULTS/pca30.txt"
