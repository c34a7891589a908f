#!/usr/bin/env python3
"""PyTorch eager reference for `make bench`: the baseline model's training step as
the trainer runs it (a batch of distinct random training images, forward with
dropout, cross-entropy, Adam), on the same data file. Prints ms per step.

usage: bench_pytorch.py MNIST.safetensors [--steps N] [--batch B] [--threads T] [--device D]
"""
import argparse
import time

import torch
from safetensors.torch import load_file
from torch import nn


class MnistCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 11)
        self.drop1 = nn.Dropout(0.25)
        self.drop2 = nn.Dropout(0.5)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = self.drop1(torch.max_pool2d(x, 2))
        x = self.drop2(torch.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mnist")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    torch.manual_seed(0)
    data = load_file(a.mnist)
    images = (data["train_images"].float() / 255.0).view(-1, 1, 28, 28).to(dev)
    labels = data["train_labels"].long().to(dev)
    net = MnistCnn().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    net.train()

    def step():
        idx = torch.randperm(images.shape[0], device=dev)[: a.batch]
        loss = nn.functional.cross_entropy(net(images[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(1, a.steps + 1):
        loss = step()
        if s % 50 == 0:
            loss.item()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    ms = 1000 * (time.perf_counter() - t0) / a.steps
    print(f"{ms:.3f}")


if __name__ == "__main__":
    main()
