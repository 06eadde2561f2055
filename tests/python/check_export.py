"""Loads a net exported by `ebmkit export` with safetensors + numpy, runs its
forward pass as the manifest describes it, and compares with ebmkit's outputs.
When PyTorch is installed it also builds the nn.Sequential, loads the file
with load_state_dict(strict=True) and compares that.

usage: check_export.py NET.safetensors INPUTS.npy OUTPUTS.npy
"""
import json
import sys

import numpy as np
from safetensors.numpy import load_file

ACTS = {
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "linear": lambda z: z,
}


def main(path, inputs, outputs):
    manifest = json.load(open(path[: -len(".safetensors")] + ".json"))
    tensors = load_file(path)
    x = np.load(inputs).astype(np.float64)
    want = np.load(outputs).astype(np.float64)
    n = len(manifest["activations"])
    expected = {f"{2 * k}.{p}" for k in range(n) for p in ("weight", "bias")}
    assert set(tensors) == expected, f"tensor names {sorted(tensors)} != {sorted(expected)}"
    h = x
    for k, act in enumerate(manifest["activations"]):
        w, b = tensors[f"{2 * k}.weight"], tensors[f"{2 * k}.bias"]
        assert w.shape == (manifest["sizes"][k + 1], manifest["sizes"][k]), w.shape
        h = ACTS[act](h @ w.T.astype(np.float64) + b.astype(np.float64))
    err = np.abs(h - want).max()
    print(f"numpy forward of {manifest['sizes']}: max |diff| {err:.2e}")
    assert err < 1e-5, err
    try:
        import torch
    except ImportError:
        print("torch not installed: nn.Sequential check skipped")
        return
    mods = {"sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU, "linear": torch.nn.Identity}
    layers = []
    for k, act in enumerate(manifest["activations"]):
        layers += [torch.nn.Linear(manifest["sizes"][k], manifest["sizes"][k + 1]), mods[act]()]
    model = torch.nn.Sequential(*layers)
    from safetensors.torch import load_file as load_torch

    model.load_state_dict(load_torch(path), strict=True)
    with torch.no_grad():
        got = model(torch.from_numpy(x.astype(np.float32))).double().numpy()
    err = np.abs(got - want).max()
    print(f"torch nn.Sequential forward: max |diff| {err:.2e}")
    assert err < 1e-5, err


if __name__ == "__main__":
    main(*sys.argv[1:4])
