#!/usr/bin/env bash
# The GPU speed figures of the README in one run, beside the PyTorch peer:
# GEMM throughput, one PCD-1 epoch (784x500, batch 100, 60,000 digits) and
# AIS (100 runs x 14,500 temperatures), with the dispatches per step, and
# one epoch of the denoising auto-encoder (784x1000 tied, batch 100) beside
# PyTorch's CUDA loop of it (benches/torch_dae.py, from the checkout).
#
#   experiments/gpu_speed.sh prepare   # here: build the binaries into .dev/ and
#                                      # copy MNIST and the peer script beside them
#   experiments/gpu_speed.sh run       # on the GPU machine, from the repo root
#
# .dev/ is git-ignored; for the lent device machine name `.dev` (and `.gl`,
# the Vulkan loader debs, see the device tool's README) in `carry`, and begin
# the command with `for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig;`.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  prepare)
    cargo build --release --quiet
    mkdir -p .dev/data .dev/bench
    cp target/release/ebmkit .dev/
    for b in rbm ais dae; do
      exe=$(cargo bench --bench "$b" --no-run --message-format=json 2>/dev/null |
        grep -o "\"executable\":\"[^\"]*/deps/$b-[^\"]*\"" | cut -d\" -f4 | tail -1)
      cp "$exe" ".dev/bench-$b"
    done
    data=${EBMKIT_DATA:-../shared/data}
    cp -r "$data/mnist" .dev/data/
    cp "${EBMKIT_BENCH:-../shared/bench}/torch_rbm.py" .dev/bench/
    # Debug info would take the folder past the 64 MiB a device run carries.
    strip .dev/ebmkit .dev/bench-rbm .dev/bench-ais .dev/bench-dae
    du -sh .dev
    ;;
  run)
    export EBMKIT_DATA=$PWD/.dev/data EBMKIT_BENCH=$PWD/.dev/bench EBMKIT_BENCH_PEER=0
    t0=$(date +%s)
    stamp() { echo "== $1 [$(( $(date +%s) - t0 )) s]"; }
    stamp info; nvidia-smi -L 2>/dev/null || true; .dev/ebmkit info
    stamp gemm; .dev/ebmkit --backend gpu bench gemm \
      --shapes 1024x1024x1024,2048x2048x2048,4096x4096x4096,100x784x500,784x100x500,1000x784x500
    stamp ais; .dev/bench-ais gpu
    stamp rbm-epoch; .dev/bench-rbm
    stamp torch; python3 .dev/bench/torch_rbm.py .dev/data/mnist || echo "torch peer failed"
    stamp dae; EBMKIT_BENCH_PEER=1 .dev/bench-dae gpu
    stamp end
    ;;
  *)
    echo "usage: $0 prepare|run" >&2
    exit 2
    ;;
esac
