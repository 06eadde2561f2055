#!/usr/bin/env bash
# Reproduction: test log-likelihood of 500-hidden binary RBMs on MNIST
# (stochastically binarised, 60,000 train / 10,000 test), estimated by AIS
# (Salakhutdinov & Murray 2008: 100 runs, 14,500 temperatures) and reverse AIS,
# printed beside the published figures.
#
#   experiments/rbm_mnist_likelihood.sh [recipe ...]     (default: all four)
#
# Data: --data via $EBMKIT_DATA (default ../shared/data). Backend: $EBMKIT_BACKEND
# (auto: the GPU if there is one). Outputs: runs/<recipe>/ (checkpoint, PNGs,
# curves, eval.txt). On an H100 the four runs take about 10 minutes; on 2 CPU
# cores, hours (CD-25 is the long one).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/ebmkit
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(rbm500-cd1 rbm500-cd3 rbm500-cd25 rbm500-pcd-centered)

published() {
  case "$1" in
    rbm500-cd1) echo "-125.53" ;;   # Salakhutdinov & Murray 2008, Table 2
    rbm500-cd3) echo "-105.50" ;;
    rbm500-cd25) echo "-86.34" ;;
    rbm500-pcd-centered) echo "~-85 (centered RBMs, PyDeep)" ;;
    *) echo "-" ;;
  esac
}

for r in "${recipes[@]}"; do
  out=runs/$r
  "$bin" train "models/$r.toml" --out "$out" --quiet --no-eval
  "$bin" eval "$out/model.safetensors" | tee "$out/eval.txt"
done

printf '\n%-22s %-30s %-12s %-12s %s\n' recipe published "AIS" "reverse AIS" "gap (nats)"
for r in "${recipes[@]}"; do
  f=runs/$r/eval.txt
  ais=$(grep '^AIS' "$f" | sed -E 's/.*test (-?[0-9.]+).*/\1/')
  rais=$(grep '^reverse AIS' "$f" | sed -E 's/.*test (-?[0-9.]+).*/\1/')
  gap=$(awk -v a="$ais" -v b="$rais" 'BEGIN { d = a - b; if (d < 0) d = -d; printf "%.2f", d }')
  printf '%-22s %-30s %-12s %-12s %s\n' "$r" "$(published "$r")" "$ais" "$rais" "$gap"
done
