#!/usr/bin/env bash
# Sparse coding, PSD and LISTA on whitened natural-image patches through the
# CLI (the recipes of issue 12): the dictionary (models/sparse-patches.toml),
# PSD (models/psd-patches.toml), then LISTA with T = 5 on the dictionary
# (models/lista-patches.toml). Each run ends with its `ebmkit eval` lines.
# Results: experiments/results/$RESULTS/{sparse,psd,lista}-patches.* .
#
# usage: [RESULTS=cpu-YYYY-MM-DD] experiments/sparse_patches.sh [-- --backend cpu|gpu]
set -euo pipefail
cd "$(dirname "$0")/.."
RESULTS="experiments/results/${RESULTS:-cpu-$(date +%F)}"
mkdir -p "$RESULTS" out
[ "${1:-}" = "--" ] && shift
cargo build --release --quiet
bin=target/release/ebmkit
for r in sparse-patches psd-patches lista-patches; do
  start=$(date +%s)
  $bin train models/$r.toml --out out/$r --quiet "$@" 2>&1 | grep -v XDG_RUNTIME | tee "$RESULTS/$r.log"
  echo "wall $(( $(date +%s) - start )) s" | tee -a "$RESULTS/$r.log"
  cp out/$r/curves.csv "$RESULTS/$r.curves.csv"
  for f in dictionary.png filters.png; do
    [ -f out/$r/$f ] && cp out/$r/$f "$RESULTS/$r.$f"
  done
done
