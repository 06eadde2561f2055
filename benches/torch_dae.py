#!/usr/bin/env python3
"""Peer for benches/dae.rs: one epoch of a denoising auto-encoder written as
a PyTorch user would (784-1000, tied weights, sigmoid, 25 % masking noise,
cross-entropy from the logits, plain SGD, batch 100) on the 60,000 MNIST
digits, float32. Nothing is read back per step. Prints JSON: the seconds of
each epoch, their median over epochs 2.., and the GEMM rate of the device on
the forward product's shape.

usage: torch_dae.py TRAIN_IMAGES_IDX(.gz) [--epochs 3] [--device cpu|cuda] [--threads 2]
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_idx(path):
    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    n, r, c = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, r * c).astype(np.float32) / 255.0


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def gemm_gflops(dev, m=100, k=784, n=1000):
    a, b = torch.rand(m, k, device=dev), torch.rand(k, n, device=dev)
    for _ in range(10):
        a @ b
    sync(dev)
    reps, t = 200, time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(dev)
    return 2 * m * k * n * reps / (time.perf_counter() - t) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("train")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    x_all = torch.from_numpy(load_idx(a.train)).to(dev)
    nv, nh, bs = 784, 1000, 100
    r = 4 * (6 / (nv + nh)) ** 0.5
    W = ((torch.rand(nv, nh, device=dev) * 2 - 1) * r).requires_grad_()
    b_h = torch.zeros(nh, device=dev, requires_grad=True)
    b_v = torch.zeros(nv, device=dev, requires_grad=True)
    opt = torch.optim.SGD([W, b_h, b_v], lr=0.1)
    times = []
    for _ in range(a.epochs):
        sync(dev)
        t = time.perf_counter()
        perm = torch.randperm(x_all.shape[0], device=dev)
        for i in range(0, x_all.shape[0] - bs + 1, bs):
            x = x_all[perm[i : i + bs]]
            keep = (torch.rand_like(x) >= 0.25).to(x.dtype)
            h = torch.sigmoid((x * keep) @ W + b_h)
            z = h @ W.t() + b_v
            loss = F.binary_cross_entropy_with_logits(z, x, reduction="sum") / bs
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(dev)
        times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "peer": f"torch {torch.__version__} {a.device}, {torch.get_num_threads()} threads",
                "s_per_epoch": times,
                "s_per_epoch_median": float(np.median(times[1:] if len(times) > 1 else times)),
                "gemm_100x784x1000_gflops": gemm_gflops(dev),
            }
        )
    )


if __name__ == "__main__":
    main()
