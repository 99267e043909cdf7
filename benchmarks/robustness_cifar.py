"""Does pre-training make a classifier more robust (Hendrycks et al. 2019)? CIFAR-10 from the shared
set: 2,000 training images (200 a class), 32 px (CIFAR-10-C's size), the same epochs for every
strategy; each run scored by `transferlab evaluate RUN DATA --corruptions` on 500 held-out images
(50 a class): clean accuracy, the mean over ImageNet-C's 15 corruptions x 5 severities, the relative
drop, and the evaluation's time.

    .venv/bin/python benchmarks/robustness_cifar.py [--strategies scratch,linear,full,full+augmix] [--seeds 0,1,2]
        [--epochs 10] [--img-size 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, cifar10_folder


def held_out(val: Path, target: Path, per_class: int = 50) -> Path:
    """The first ``per_class`` validation images of each class, linked into ``target``."""
    for folder in sorted(p for p in val.iterdir() if p.is_dir()):
        (target / folder.name).mkdir(parents=True, exist_ok=True)
        for image in sorted(folder.iterdir())[:per_class]:
            (target / folder.name / image.name).symlink_to(image.resolve())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="scratch,linear,full,full+augmix")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--img-size", type=int, default=32, help="the network's input (32: CIFAR-10-C's size)")
    args = parser.parse_args()
    from transferlab.tasks import classify

    data = cifar10_folder(ROOT / ".bench-cache")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        test = held_out(data / "val", Path(tmp) / "test")
        for strategy in args.strategies.split(","):
            found = []
            for seed in map(int, args.seeds.split(",")):
                run = Path(tmp) / f"{strategy}-{seed}"
                name, _, extra = strategy.partition("+")
                options = {"shots": 200, "img_size": args.img_size, "epochs": args.epochs, "seed": seed}
                classify.train(data / "train", out=run, strategy=name, augmix=extra == "augmix", **options)
                started = time.perf_counter()
                scores = classify.evaluate(run, test, corruptions="all", seed=seed)["corruptions"]
                found.append((scores["clean"], scores["mean"], scores["relative_drop"], time.perf_counter() - started))
                print(strategy, seed, [round(x, 4) for x in found[-1]], flush=True)
            rows.append((strategy, found))
    print("\n| strategy | clean accuracy | mean corrupted accuracy | relative drop | evaluation s |")
    print("| --- | --- | --- | --- | --- |")
    for strategy, found in rows:
        cells = []
        for i in range(4):
            values = [f[i] for f in found]
            spread = f" +- {statistics.stdev(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.3f}{spread}" if i < 3 else f"{statistics.mean(values):.0f}")
        print(f"| {strategy} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
