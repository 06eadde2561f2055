#!/usr/bin/env bash
# Gaussian-binary RBMs on ZCA-whitened 8x8 natural-image patches: the exact
# test log-likelihood (hidden layer enumerated, 20 units) with a learned
# variance per pixel (Cho, Ilin & Raiko 2011) against the same model with
# every variance fixed. Test patches come from held-out photographs (every
# fifth image of <data>/images by name).
#
#   experiments/grbm_patches.sh
#
# Data: $EBMKIT_DATA (default ../shared/data). Backend: $EBMKIT_BACKEND.
# Outputs: runs/<recipe>/ (checkpoint, filters, samples, curves, eval.txt).
# About half a minute per recipe on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/ebmkit
recipes=(grbm20-patches grbm20-patches-fixed)
for r in "${recipes[@]}"; do
  out=runs/$r
  "$bin" train "models/$r.toml" --out "$out" --quiet --no-eval
  "$bin" eval "$out/model.safetensors" | tee "$out/eval.txt"
done
printf '\n%-24s %-14s %-14s\n' recipe "test (nats)" "train (nats)"
for r in "${recipes[@]}"; do
  f=runs/$r/eval.txt
  t=$(sed -E 's/.*test (-?[0-9.]+).*/\1/' "$f")
  tr=$(sed -E 's/.*train (-?[0-9.]+).*/\1/' "$f")
  printf '%-24s %-14s %-14s\n' "$r" "$t" "$tr"
done
