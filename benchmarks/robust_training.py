"""Does training on corruptions (`segment train --corrupt SHARE`) buy robustness? On the ISBI
membranes (30 EM slices of 512x512): the last 6 slices are the test set, `segment train` with its
CPU defaults trains on the other 24 (its own seeded 20% of them picks the best epoch), once clean
(`--corrupt 0`) and once with `--corrupt SHARE`, per seed, all 30 epochs (`--time-budget 0`: the
comparison does not depend on the machine's speed). Each run is scored on the test slices,
clean and under ImageNet-C's 15 corruptions (`segment evaluate --corruptions`; training draws 13 of
them: glass_blur and elastic_transform are never trained on, and are shown apart).

    .venv/bin/python benchmarks/robust_training.py [--seeds 0,1] [--shares 0,0.5] [--severities 1,3,5]
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

from common import ROOT
from segment_membrane import membrane

UNSEEN = ("glass_blur", "elastic_transform")  # evaluated, never trained on (robustness.TRAINING_CORRUPTIONS)


def split(source: Path, root: Path, test: int = 6) -> tuple[Path, Path]:
    """``root/train`` and ``root/test`` (images/ + masks/, links to the slices): the last ``test``
    slices by name are the test set."""
    names = sorted(p.name for p in (source / "images").iterdir())
    parts = {"train": names[:-test], "test": names[-test:]}
    for part, chosen in parts.items():
        for kind in ("images", "masks"):
            (root / part / kind).mkdir(parents=True, exist_ok=True)
            for name in chosen:
                (root / part / kind / name).symlink_to(source / kind / name)
    return root / "train", root / "test"


def summary(scores: dict) -> dict[str, float]:
    robust = scores["corruptions"]
    seen = [v for n, v in robust["by_corruption"].items() if n not in UNSEEN]
    unseen = [v for n, v in robust["by_corruption"].items() if n in UNSEEN]
    families = {f"family {k}": v for k, v in robust["by_family"].items()}
    return {"clean": scores["miou"], "corrupted": robust["mean"], "trained-on 13": statistics.mean(seen),
            "unseen 2": statistics.mean(unseen), **families}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--shares", default="0,0.5", help="the --corrupt shares to train with")
    parser.add_argument("--severities", default="1,3,5")
    args = parser.parse_args()
    from transferlab.tasks import segment

    severities = [int(s) for s in args.severities.split(",")]
    data = membrane(Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache")))
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train, test = split(data, Path(tmp) / "split")
        for share in map(float, args.shares.split(",")):
            for seed in map(int, args.seeds.split(",")):
                started = time.perf_counter()
                out = Path(tmp) / f"c{share}-s{seed}"
                run = segment.train(images=str(train / "images"), masks=str(train / "masks"), corrupt=share,
                                    seed=seed, accelerator="cpu", time_budget=0, out=out).run_dir  # fmt: skip
                trained = time.perf_counter() - started
                scores = segment.evaluate(run, images=str(test / "images"), masks=str(test / "masks"),
                                          corruptions="all", severities=severities, seed=0)  # fmt: skip
                row = summary(scores)
                results.setdefault(f"--corrupt {share:g}", []).append(row)
                print(f"--corrupt {share:g} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items())
                      + f" ({trained:.0f} s training, {time.perf_counter() - started - trained:.0f} s scoring)",
                      flush=True)  # fmt: skip
    keys = list(next(iter(results.values()))[0])
    print(f"\ntest mIoU, mean +- std over seeds {args.seeds}, severities {args.severities}\n")
    print("| training | " + " | ".join(keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    for name, rows in results.items():
        cells = []
        for key in keys:
            values = [r[key] for r in rows]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} +- {spread:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
