"""Domain adaptation on MNIST <-> USPS (../shared/data/digits-mnist-usps.npz), LeNet, against the
Transfer-Learning-Library's published numbers (LeNet; MNIST->USPS source-only 82.1, DANN 91.7,
CDAN 96.0; USPS->MNIST 74.6 / 95.2 / 97.7). Target accuracy is on held-out target images whose
labels no method saw; mean and std over seeds; seconds per run (and per epoch).

    .venv/bin/python benchmarks/adapt_digits.py --direction m2u --methods dann,cdan,coral --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import SHARED
from transferlab.data import from_arrays
from transferlab.tasks.adapt import adapt

ANCHORS = {
    "m2u": {"source-only": 82.1, "dann": 91.7, "cdan": 96.0},
    "u2m": {"source-only": 74.6, "dann": 95.2, "cdan": 97.7},
}


def domain(d: np.lib.npyio.NpzFile, name: str):
    return from_arrays(d[f"{name}_train_x"], d[f"{name}_train_y"], d[f"{name}_val_x"], d[f"{name}_val_y"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--direction", default="m2u", choices=["m2u", "u2m", "both"])
    parser.add_argument("--methods", default="dann,cdan,coral")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--iters", type=int, default=500)
    parser.add_argument("--out", default="/tmp/adapt-bench")
    args = parser.parse_args()
    d = np.load(SHARED / "digits-mnist-usps.npz")
    directions = ["m2u", "u2m"] if args.direction == "both" else [args.direction]
    for direction in directions:
        source, target = ("mnist", "usps") if direction == "m2u" else ("usps", "mnist")
        rows = adapt(
            domain(d, source), domain(d, target), methods=args.methods.split(","),
            seeds=[int(s) for s in args.seeds.split(",")], epochs=args.epochs, iters_per_epoch=args.iters,
            out=f"{args.out}/{direction}",
        )  # fmt: skip
        print(f"{source} -> {target} ({args.epochs} x {args.iters} steps, batch 64 per domain)")
        for r in rows:
            anchor = ANCHORS[direction].get(r["method"])
            print(
                f"  {r['method']:12s} {r['target acc %']:6.2f} +- {r['std']:.2f}  "
                f"(published {anchor if anchor else '-'}; {r['seconds per run']:.0f} s a run, "
                f"{r['seconds per run'] / args.epochs:.1f} s an epoch)"
            )


if __name__ == "__main__":
    main()
