#!/usr/bin/env bash
# Pretrain, fine-tune and compare with the randomly initialised twin, on
# MNIST (50,000 train / 10,000 validation / 10,000 test):
#   sda3     stacked denoising AEs, 3 x 1000 (Vincent et al. 2010: 1.28 %)
#   cae      one contractive AE of 1000 units (Rifai et al. 2011: 1.14 %)
#   dbn-mlp  RBM stack 500-500-2000 (Hinton & Salakhutdinov 2006: 1.2 %)
#   dbm      the 784-500-1000 DBM of experiments/dbm_mnist.sh, its posteriors
#            of h2 appended to the input (Salakhutdinov & Hinton 2009: 0.95 %)
# Each step resumes where an earlier run stopped (checkpoints in out/).
# The twin gets the same recipe (epochs, early stopping, learning rate)
# without the stack. With LRS="0.03 0.1" both nets are fine-tuned at each
# learning rate (the recipe otherwise unchanged) and each reports the run
# with the lowest validation error; without, the recipe's own rate.
# Results: experiments/results/$RESULTS/.
#
# usage: [LRS="..."] experiments/finetune_mnist.sh [sda3|cae|dbn-mlp ...] [-- --backend cpu|gpu]
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
# A stack that stopped mid-way has layer checkpoints but no model.safetensors
# yet; --resume continues its unfinished layer.
resume() { { [ -f "$1/model.safetensors" ] || [ -d "$1/layers" ]; } && echo "--resume $1/model.safetensors" || true; }
# The lowest validation error in a run's curves.csv.
best_valid() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "valid_error") c = i; next }
           c && (m == "" || $c < m) { m = $c } END { print m }' "$1"
}

for n in "${names[@]}"; do
  pretrained="out/$n-stack/model.safetensors"
  if [ "$n" = dbm ]; then
    # Trained (for hours) by experiments/dbm_mnist.sh.
    pretrained=out/dbm-mnist/model.safetensors
    [ -f "$pretrained" ] || { echo "run experiments/dbm_mnist.sh first"; exit 1; }
  else
    $bin train "models/$n-stack.toml" --out "out/$n-stack" --quiet $(resume "out/$n-stack") "${extra[@]}" \
      2>&1 | tee -a "$RESULTS/$n-stack.log"
  fi
  tags=("")
  if [ -n "${LRS:-}" ]; then
    tags=()
    for lr in $LRS; do
      tags+=("-lr$lr")
      sed "s/^lr = .*/lr = $lr/" "models/$n-finetune.toml" > "out/$n-finetune-lr$lr.toml"
    done
  fi
  for tag in "${tags[@]}"; do
    recipe="models/$n-finetune.toml"
    [ -z "$tag" ] || recipe="out/$n-finetune$tag.toml"
    $bin finetune "$pretrained" --recipe "$recipe" \
      --out "out/$n-pretrained$tag" --quiet $(resume "out/$n-pretrained$tag") "${extra[@]}" \
      2>&1 | tee -a "$RESULTS/$n-pretrained$tag.log"
    $bin train "$recipe" --out "out/$n-random$tag" --quiet $(resume "out/$n-random$tag") "${extra[@]}" \
      2>&1 | tee -a "$RESULTS/$n-random$tag.log"
    for run in "$n-pretrained$tag" "$n-random$tag"; do
      cp "out/$run/curves.csv" "$RESULTS/$run.curves.csv"
      cp "out/$run/curve-error.png" "$RESULTS/$run.curve-error.png"
    done
  done
  echo "== $n"
  for kind in pretrained random; do
    # The run with the lowest validation error (never the test error).
    pick="" score=""
    for tag in "${tags[@]}"; do
      v=$(best_valid "out/$n-$kind$tag/curves.csv")
      if [ -z "$score" ] || awk -v a="$v" -v b="$score" 'BEGIN { exit !(a < b) }'; then
        pick=$tag score=$v
      fi
    done
    how="the recipe's learning rate"
    [ -z "$pick" ] || how="${pick#-}, the lowest validation error of LRS=$LRS"
    echo "$kind: $how: best validation error $score %"
    grep -h "^best validation epoch\|^test:" "$RESULTS/$n-$kind$pick.log" | tail -2 | sed "s/^/$kind: /"
  done
done
