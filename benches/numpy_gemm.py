#!/usr/bin/env python3
"""Peer for benches/gemm.rs: numpy (OpenBLAS) fp32 A@B GFLOP/s, median of
batches, printed as JSON lines. Shapes come as MxKxN arguments."""
import json, sys, time
import numpy as np

for s in sys.argv[1:]:
    m, k, n = map(int, s.split('x'))
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (k, n)).astype(np.float32)
    reps = max(1, int(0.05 * 200e9 / (2 * m * k * n)))
    for _ in range(reps):
        a @ b
    times = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        times.append((time.perf_counter() - t) / reps)
    print(json.dumps({'m': m, 'k': k, 'n': n, 'gflops': 2 * m * k * n / float(np.median(times)) / 1e9}))
