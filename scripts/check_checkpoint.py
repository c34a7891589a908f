#!/usr/bin/env python3
"""Loads a nullclass MNIST checkpoint into the equivalent torch.nn.Module
(strict=True) and compares its logits with ones the Rust model computed.

usage: check_checkpoint.py MODEL.safetensors IMAGES.npy LOGITS.npy [TOL]
Exits 0 when every logit agrees within TOL (default 1e-5); prints the max error.
"""
import sys

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn


class MnistCnn(nn.Module):
    """The report's Table 1 in PyTorch: the same names and shapes as nullclass."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 11)

    def forward(self, x):
        x = torch.relu(self.conv1(x.view(-1, 1, 28, 28)))
        x = torch.relu(self.conv2(x))
        x = torch.flatten(torch.max_pool2d(x, 2), 1)
        x = torch.relu(self.fc1(x))
        return self.fc2(x)


def main():
    model_path, images_path, logits_path = sys.argv[1:4]
    tol = float(sys.argv[4]) if len(sys.argv) > 4 else 1e-5
    net = MnistCnn()
    net.load_state_dict(load_file(model_path), strict=True)
    net.eval()
    images = torch.from_numpy(np.load(images_path))
    expected = np.load(logits_path)
    with torch.no_grad():
        got = net(images).numpy()
    err = float(np.abs(got - expected).max())
    print(f"max |logit difference| = {err:.3g}")
    sys.exit(0 if err <= tol else 1)


if __name__ == "__main__":
    main()
