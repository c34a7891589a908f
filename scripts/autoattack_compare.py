#!/usr/bin/env python3
"""Our pointwise worst case against AutoAttack's components from a peer library.

Runs torchattacks' APGD-CE, APGD-T (targeted DLR) and Square, L-infinity, on the
same sources as `adversary-gen robust` (SET/adversarial/robust/), against every
model of the set through the detector-merging wrapper: the model's 11 logits z
become 10, with the true class's logit z_y replaced by max(z_y, z_null), so that
an attack succeeds only with a wrong digit and the null class counts as the
attacker's failure (issue 14). Their union per image is set beside our worst case,
the `worst-case` rows of SET/eval/robust.csv from `evaluator robust` (which must
have scored this very robust run: its robust_meta.json names the run's meta.json
hash).

usage: autoattack_compare.py --artifacts ROOT --seed S [--eps 0.1,0.2,0.3]
           [--models base,m] [--attacks apgd-ce,apgd-t,square] [--n-iter 100]
           [--n-restarts 1] [--n-target-classes 9] [--n-queries 1000]
           [--p-init 0.8] [--threads 1] [--json OUT]

Prints a markdown table (share of the N sources turned into a wrong digit, per
model and radius): ours, each peer attack, their union, ours - union in points,
and "theirs only" (sources the union breaks that none of our adaptive images,
pgd_adaptive / apgd / square of the run, break on that model; recounted here with
the PyTorch model, so the transfer attacks are left out of that column only).
--json writes the same numbers as counts, with per-attack wall seconds.

Exit status: 0 when done (whatever the numbers), 2 on bad inputs, 3 when
torchattacks cannot be imported.
"""
import argparse
import csv
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

NULL = 10
VARIANTS = ["base", "u", "s", "m", "us", "um", "sm", "usm"]
ATTACKS = ["apgd-ce", "apgd-t", "square"]


class MnistCnn(nn.Module):
    """nullclass's MNIST CNN (crates/nullclass/src/model.rs; as in check_checkpoint.py)."""

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


class Merged(nn.Module):
    """The detector-merging wrapper: 10 logits, z_y replaced by max(z_y, z_null).

    The peer attacks call the model on subsets of the batch and never pass the
    labels, so the wrapper finds each input's source itself: the source image
    nearest in L-infinity, which is unique because every input lies within eps of
    its source and the sources are more than 2 eps apart (checked at construction).
    """

    def __init__(self, net, sources, labels, eps):
        super().__init__()
        self.net = net
        self.sources = sources.reshape(len(sources), -1)
        self.labels = labels
        self.eps = eps
        if len(sources) > 1:
            gap = pairwise_linf(self.sources).min().item()
            if gap <= 2 * eps:
                raise ValueError(
                    f"two sources are only {gap:.3f} apart in L-inf, not more than "
                    f"2 eps = {2 * eps}: the wrapper could not tell their balls apart"
                )

    def forward(self, x):
        z = self.net(x)
        with torch.no_grad():
            flat = x.reshape(len(x), -1)
            dist, who = torch.cdist(flat, self.sources, p=float("inf")).min(1)
            if (dist > self.eps + 1e-4).any():
                raise RuntimeError(
                    f"an input lies {dist.max().item():.4f} from every source, "
                    f"outside the eps = {self.eps} ball"
                )
        y = self.labels[who].unsqueeze(1)
        digits = z[:, :NULL]
        top = torch.maximum(digits.gather(1, y), z[:, NULL:])
        return digits.scatter(1, y, top)


def pairwise_linf(flat):
    d = torch.cdist(flat, flat, p=float("inf"))
    return d + torch.eye(len(flat)) * 1e9


def wrong_digit(net, images, labels):
    """bool [N]: the model's top output is a digit other than the label."""
    with torch.no_grad():
        pred = net(images).argmax(1)
    return (pred != labels) & (pred != NULL)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fail(msg):
    print(f"autoattack_compare: {msg}", file=sys.stderr)
    sys.exit(2)


def our_worst(eval_dir, n):
    """{(model, eps): wrong digits} from the worst-case rows of robust.csv."""
    path = eval_dir / "robust.csv"
    if not path.exists():
        fail(f"{path} missing: run evaluator robust first")
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["attack"] != "worst-case":
                continue
            if int(row["n"]) != n:
                fail(f"{path}: n = {row['n']}, the robust run has {n} sources")
            out[(row["model"], float(row["eps"]))] = int(row["misclassified"])
    return out


def lookup(table, model, eps):
    for (m, e), v in table.items():
        if m == model and abs(e - eps) < 1e-6:
            return v
    return None


def peer_attack(name, ta, model, eps, args):
    if name == "apgd-ce":
        return ta.APGD(model, norm="Linf", eps=eps, steps=args.n_iter,
                       n_restarts=args.n_restarts, seed=args.seed, loss="ce")
    if name == "apgd-t":
        a = ta.APGDT(model, norm="Linf", eps=eps, steps=args.n_iter,
                     n_restarts=args.n_restarts, seed=args.seed, n_classes=10)
        # n_target_classes as in AutoAttack (9 = every wrong digit).
        a.n_target_classes = args.n_target_classes
        return a
    if name == "square":
        return ta.Square(model, norm="Linf", eps=eps, n_queries=args.n_queries,
                         n_restarts=1, p_init=args.p_init, loss="margin", seed=args.seed)
    raise ValueError(name)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifacts", required=True, type=Path)
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--eps", default="0.1,0.2,0.3",
                   help="radii, each one of the robust run's (comma-separated)")
    p.add_argument("--models", default=",".join(VARIANTS))
    p.add_argument("--attacks", default=",".join(ATTACKS))
    p.add_argument("--n-iter", type=int, default=100, help="APGD / APGD-T iterations")
    p.add_argument("--n-restarts", type=int, default=1)
    p.add_argument("--n-target-classes", type=int, default=9)
    p.add_argument("--n-queries", type=int, default=1000, help="Square queries")
    p.add_argument("--p-init", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    try:
        import torchattacks as ta
    except ImportError as e:
        print(f"autoattack_compare: torchattacks cannot be imported ({e}); "
              "scripts/setup.sh installs it", file=sys.stderr)
        sys.exit(3)
    torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    attacks = [a for a in args.attacks.split(",") if a]
    for a in attacks:
        if a not in ATTACKS:
            fail(f"unknown attack {a!r}: use {', '.join(ATTACKS)}")
    if not 0 <= args.n_target_classes <= 9:
        fail("--n-target-classes must be 0 to 9")

    set_dir = args.artifacts / f"seed-{args.seed:02d}"
    robust = set_dir / "adversarial" / "robust"
    eval_dir = set_dir / "eval"
    if not (robust / "meta.json").exists():
        fail(f"{robust}/meta.json missing: run adversary-gen robust first")
    eval_meta = eval_dir / "robust_meta.json"
    if not eval_meta.exists():
        fail(f"{eval_meta} missing: run evaluator robust first")
    if json.loads(eval_meta.read_text())["robust_meta_sha256"] != sha256(robust / "meta.json"):
        fail(f"{eval_meta} scored another run than {robust}: rerun evaluator robust")
    sources = torch.from_numpy(np.load(robust / "source_images.npy")).unsqueeze(1)
    labels = torch.from_numpy(np.load(robust / "labels.npy"))
    radii = [float(e) for e in np.load(robust / "eps.npy")]
    n = len(labels)
    ours = our_worst(eval_dir, n)
    wanted = [float(e) for e in args.eps.split(",") if e]

    rows = []
    for name in models:
        path = set_dir / "models" / f"{name}.safetensors"
        if not path.exists():
            fail(f"{path} missing")
        net = MnistCnn()
        net.load_state_dict(load_file(path), strict=True)
        net.eval()
        for p_ in net.parameters():
            p_.requires_grad_(False)
        for want in wanted:
            k = next((i for i, e in enumerate(radii) if abs(e - want) < 1e-6), None)
            if k is None:
                fail(f"eps {want} is not among the robust run's radii {radii}")
            eps = radii[k]
            model = Merged(net, sources, labels, eps).eval()
            broken = {}
            seconds = {}
            for a in attacks:
                t0 = time.time()
                adv = peer_attack(a, ta, model, eps, args)(sources, labels).detach()
                seconds[a] = time.time() - t0
                off = (adv - sources).abs().amax().item()
                if off > eps + 1e-5 or adv.min() < 0 or adv.max() > 1:
                    fail(f"{a} left the ball or [0, 1] (|delta| = {off}) on {name}")
                broken[a] = wrong_digit(net, adv, labels)
            union = torch.zeros(n, dtype=torch.bool)
            for b in broken.values():
                union |= b
            mine = torch.zeros(n, dtype=torch.bool)
            for prefix in ["pgd_adaptive", "apgd", "square"]:
                f = robust / f"{prefix}_{name}.npy"
                if f.exists():
                    imgs = torch.from_numpy(np.load(f)[k]).unsqueeze(1)
                    mine |= wrong_digit(net, imgs, labels)
            our = lookup(ours, name, eps)
            if our is None:
                fail(f"robust.csv has no worst-case row for {name} at eps {eps}")
            row = {
                "model": name,
                "eps": round(eps, 6),
                "n": n,
                "ours": our,
                "union": int(union.sum()),
                "theirs_only": int((union & ~mine).sum()),
                "ours_adaptive_recount": int(mine.sum()),
                "seconds": {a: round(s, 2) for a, s in seconds.items()},
            }
            row.update({a: int(b.sum()) for a, b in broken.items()})
            rows.append(row)
            print(f"autoattack_compare: {name} eps {eps:g}: ours {our}, "
                  + ", ".join(f"{a} {row[a]}" for a in attacks)
                  + f", union {row['union']} of {n} "
                  f"({sum(seconds.values()):.1f} s)", file=sys.stderr, flush=True)

    pct = lambda c: f"{100.0 * c / n:.1f} %"
    head = ["model", "eps", "ours (worst case)"]
    names = {"apgd-ce": "APGD-CE", "apgd-t": f"APGD-T ({args.n_target_classes} targets)",
             "square": f"Square ({args.n_queries} q)"}
    head += [names[a] for a in attacks] + ["theirs, union", "ours - union", "theirs only"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    worst_gap = math.inf
    for r in rows:
        gap = 100.0 * (r["ours"] - r["union"]) / n
        worst_gap = min(worst_gap, gap)
        cells = [r["model"], f"{r['eps']:g}", pct(r["ours"])]
        cells += [pct(r[a]) for a in attacks]
        cells += [pct(r["union"]), f"{gap:+.1f}", str(r["theirs_only"])]
        print("| " + " | ".join(cells) + " |")
    if rows:
        print(f"\nN = {n} sources; smallest ours - union: {worst_gap:+.1f} points "
              f"(target: >= -1).")
    if args.json:
        args.json.write_text(json.dumps({
            "n": n,
            "settings": {"n_iter": args.n_iter, "n_restarts": args.n_restarts,
                         "n_target_classes": args.n_target_classes,
                         "n_queries": args.n_queries, "p_init": args.p_init},
            "rows": rows,
        }, indent=1))


if __name__ == "__main__":
    main()
