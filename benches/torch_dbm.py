#!/usr/bin/env python3
"""Peer for benches/dbm.rs: one epoch of deep Boltzmann machine training
written as a PyTorch user would (784-500-1000 binary DBM, Salakhutdinov &
Hinton 2009): per batch of 100, a doubled bottom-up pass and exactly 10
mean-field sweeps on the data, one block Gibbs sweep of 100 persistent
fantasy particles, and a momentum step with weight decay on every
parameter, on the 60,000 MNIST digits binarised once, float32, no autograd.
Nothing is read back per step. Prints JSON: the seconds of each epoch,
their median over epochs 2.., and the GEMM rate of the device on the
mean-field product's shape.

usage: torch_dbm.py TRAIN_IMAGES_IDX(.gz) [--epochs 3] [--device cpu|cuda] [--threads 2]
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch


def load_idx(path):
    raw = (gzip.open if path.endswith(".gz") else open)(path, "rb").read()
    n, r, c = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, r * c).astype(np.float32) / 255.0


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def gemm_gflops(dev, m=100, k=1000, n=500):
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
    x_all = (torch.rand_like(x_all) < x_all).float()
    n0, n1, n2, bs, m = 784, 500, 1000, 100, 100
    lr, mom, wd, mf_iters = 0.001, 0.9, 0.0002, 10
    W1 = torch.randn(n0, n1, device=dev) * 0.01
    W2 = torch.randn(n1, n2, device=dev) * 0.01
    b0, b1, b2 = (torch.zeros(n, device=dev) for n in (n0, n1, n2))
    params = [W1, W2, b0, b1, b2]
    steps = [torch.zeros_like(q) for q in params]
    v = x_all[:m].clone()
    h1 = torch.bernoulli(torch.sigmoid(2 * (v @ W1 + b1)))
    h2 = torch.bernoulli(torch.sigmoid(h1 @ W2 + b2))
    times = []
    with torch.no_grad():
        for _ in range(a.epochs):
            sync(dev)
            t = time.perf_counter()
            perm = torch.randperm(x_all.shape[0], device=dev)
            for i in range(0, x_all.shape[0] - bs + 1, bs):
                x = x_all[perm[i : i + bs]]
                # Mean field, started from the doubled bottom-up pass.
                x1 = x @ W1
                mu1 = torch.sigmoid(2 * (x1 + b1))
                mu2 = torch.sigmoid(mu1 @ W2 + b2)
                for _ in range(mf_iters):
                    mu1 = torch.sigmoid(x1 + mu2 @ W2.t() + b1)
                    mu2 = torch.sigmoid(mu1 @ W2 + b2)
                # One Gibbs sweep: the odd layer, then the even ones.
                h1 = torch.bernoulli(torch.sigmoid(v @ W1 + h2 @ W2.t() + b1))
                v = torch.bernoulli(torch.sigmoid(h1 @ W1.t() + b0))
                h2 = torch.bernoulli(torch.sigmoid(h1 @ W2 + b2))
                grads = [
                    x.t() @ mu1 / bs - v.t() @ h1 / m,
                    mu1.t() @ mu2 / bs - h1.t() @ h2 / m,
                    x.mean(0) - v.mean(0),
                    mu1.mean(0) - h1.mean(0),
                    mu2.mean(0) - h2.mean(0),
                ]
                for k, (q, g, s) in enumerate(zip(params, grads, steps)):
                    if k < 2:
                        g = g - wd * q
                    s.mul_(mom).add_(g, alpha=lr)
                    q.add_(s)
            sync(dev)
            times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "peer": f"torch {torch.__version__} {a.device}, {torch.get_num_threads()} threads",
                "s_per_epoch": times,
                "s_per_epoch_median": float(np.median(times[1:] if len(times) > 1 else times)),
                "gemm_100x1000x500_gflops": gemm_gflops(dev),
            }
        )
    )


if __name__ == "__main__":
    main()
