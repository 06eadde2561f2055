#!/usr/bin/env bash
# The learned-inference table of issue 12 (Gregor & LeCun 2010, Table 1 /
# Fig. 3 setting, replicated on 12x12 patches with 256 atoms): code
# prediction error of ISTA, FISTA, PSD's encoder and LISTA against the
# number of iterations T, on whitened patches of held-out photographs.
# Output: experiments/results/$RESULTS/learned-inference/{table.md,
# table.json, curve-prediction_error.png, dictionary.png, psd-dictionary.png, run.log}.
#
# usage: [RESULTS=cpu-YYYY-MM-DD] experiments/learned_inference.sh [example options]
set -euo pipefail
cd "$(dirname "$0")/.."
out="experiments/results/${RESULTS:-cpu-$(date +%F)}/learned-inference"
mkdir -p "$out"
cargo build --release --quiet --example learned_inference
target/release/examples/learned_inference --out "$out" \
  --patches 100000 --test-patches 5000 --dict-epochs 3 \
  --lista-rows 100000 --lista-epochs 8 --sgd --lista-lr 0.01 --psd-epochs 3 \
  "$@" 2>&1 | tee "$out/run.log"
