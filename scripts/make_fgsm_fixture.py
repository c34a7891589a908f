#!/usr/bin/env python3
"""Writes tests/fixtures/fgsm/: PyTorch's logits and input gradients for the MNIST CNN
(the report's Table 1) with fixed weights, which the Rust tests compare against.

The weights come from an integer hash, not a file, so the fixture stays small and the
Rust test rebuilds them exactly: parameter j (in the order conv1.weight, conv1.bias,
conv2.weight, conv2.bias, fc1.weight, fc1.bias, fc2.weight, fc2.bias), element i
(row-major), is (2u - 1) * a with u = ((i + 7919 j + 1) * 2654435761 mod 2^32) / 2^32,
computed in float64 and rounded to float32; a is the Glorot bound
sqrt(6 / (fan_in + fan_out)) for weights and 0.1 for biases.

The gradient is d/dx of the 11-way softmax cross-entropy against the labels, summed
over the batch (so each image's gradient is that of its own loss).

Run: .venv/bin/python scripts/make_fgsm_fixture.py [out_dir]
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PARAMS = [
    ("conv1.weight", (32, 1, 3, 3), 1 * 9, 32 * 9),
    ("conv1.bias", (32,), None, None),
    ("conv2.weight", (64, 32, 3, 3), 32 * 9, 64 * 9),
    ("conv2.bias", (64,), None, None),
    ("fc1.weight", (128, 9216), 9216, 128),
    ("fc1.bias", (128,), None, None),
    ("fc2.weight", (11, 128), 128, 11),
    ("fc2.bias", (11,), None, None),
]


def hashed(j, shape, fan_in, fan_out):
    n = math.prod(shape)
    i = torch.arange(n, dtype=torch.int64)
    u = ((i + 7919 * j + 1) * 2654435761) % (2**32)
    a = math.sqrt(6.0 / (fan_in + fan_out)) if fan_in else 0.1
    return ((2.0 * u.double() / 2.0**32 - 1.0) * a).float().view(shape)


class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 11)

    def forward(self, x):
        x = F.relu(self.conv1(x.view(-1, 1, 28, 28)))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2).flatten(1)
        return self.fc2(F.relu(self.fc1(x)))


def images(k):
    # Smooth blobs on a dark background, roughly digit-like in their statistics.
    g = torch.Generator().manual_seed(20240611)
    noise = torch.rand(k, 1, 36, 36, generator=g)
    blur = F.avg_pool2d(noise, 9, stride=1)  # [k,1,28,28]
    lo = blur.amin(dim=(2, 3), keepdim=True)
    hi = blur.amax(dim=(2, 3), keepdim=True)
    x = ((blur - lo) / (hi - lo) * 2.0 - 0.8).clamp(0.0, 1.0)
    return x.view(k, 28, 28).contiguous()


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/fixtures/fgsm"
    out.mkdir(parents=True, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    model = MnistCnn()
    state = {name: hashed(j, shape, fi, fo) for j, (name, shape, fi, fo) in enumerate(PARAMS)}
    model.load_state_dict(state, strict=True)
    model.eval()

    k = 6
    x = images(k)
    labels = torch.tensor([0, 3, 5, 7, 9, 2], dtype=torch.int64)
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    loss = F.cross_entropy(logits, labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)

    np.save(out / "images.npy", x.numpy().astype(np.float32))
    np.save(out / "labels.npy", labels.numpy().astype(np.int64))
    np.save(out / "logits.npy", logits.detach().numpy().astype(np.float32))
    np.save(out / "grads.npy", grad.numpy().astype(np.float32))
    info = {
        "torch": torch.__version__,
        "images": k,
        "weights": "hashed, see scripts/make_fgsm_fixture.py",
        "loss": "cross_entropy(logits, labels, reduction=sum)",
        "predicted": logits.argmax(1).tolist(),
        "grad_abs_max": float(grad.abs().max()),
        "grad_zero_share": float((grad == 0).float().mean()),
    }
    (out / "fixture.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
