#!/usr/bin/env bash
# The two-layer DBN of Salakhutdinov & Murray (2008) on MNIST
# (models/dbn2-mnist.toml): its variational lower bound on the test
# log-likelihood (top RBM's log Z by AIS and reverse AIS, 14,500
# temperatures) beside its first RBM's own AIS log-likelihood on the same
# test set. The greedy argument says adding the layer should not lower the
# bound much below the first RBM's log p. Resumes where it stopped.
# Results: experiments/results/$RESULTS/dbn2-*.
#
# usage: experiments/dbn_mnist.sh [-- --backend cpu|gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS="experiments/results/${RESULTS:-cpu-2026-12-03}"
mkdir -p "$RESULTS" out
[ "${1:-}" = "--" ] && shift
extra=("$@")
cargo build --release --quiet
bin=target/release/ebmkit
out=out/dbn2-mnist
resume=()
# A stack that stopped mid-way has layer checkpoints but no model.safetensors
# yet; --resume continues its unfinished layer.
if [ -f "$out/model.safetensors" ] || [ -d "$out/layers" ]; then resume=(--resume "$out/model.safetensors"); fi
$bin train models/dbn2-mnist.toml --out $out --quiet --no-eval "${resume[@]}" "${extra[@]}" \
  2>&1 | tee -a "$RESULTS/dbn2-train.log"
{
  echo "== the first RBM alone (published, CD-25: -86.34)"
  $bin eval $out/layers/layer-0.safetensors "${extra[@]}"
  echo "== the two-layer DBN: its variational lower bound"
  $bin eval $out/model.safetensors "${extra[@]}"
} 2>&1 | tee "$RESULTS/dbn2-eval.log"
cp $out/samples.png "$RESULTS/dbn2-samples.png"
