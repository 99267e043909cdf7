"""Does transfer, and training on corruptions (`--corrupt SHARE`), buy robustness in the dense
tasks? Each run is scored on a test set no run trains on, clean and under ImageNet-C's 15
corruptions (`evaluate --corruptions`; training draws 13 of them: glass_blur and
elastic_transform are never trained on, and are shown apart). A run is ``STRATEGY`` or
``STRATEGY+corrupt`` (`--corrupt SHARE`); every run has its task's CPU defaults otherwise, and
its own seeded 20% of the training part picks the best epoch.

- ``membrane``: the ISBI membranes (30 EM slices of 512x512), the last 6 slices the test set,
  `segment train` on the other 24, all 30 epochs (`--time-budget 0`: the comparison does not
  depend on the machine's speed); test mIoU.
- ``kangaroo``: the kangaroo photos (163 readable, one box class), the last 33 by name the test
  set, `detect train` on the other 130 for ``--epochs`` epochs; test mAP@.5.

    .venv/bin/python benchmarks/robust_training.py [--set membrane] [--runs full,full+corrupt]
        [--share 0.5] [--seeds 0,1] [--severities 1,3,5] [--epochs 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tarfile
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, SHARED, mean_spread
from segment_membrane import membrane

UNSEEN = ("glass_blur", "elastic_transform")  # evaluated, never trained on (robustness.TRAINING_CORRUPTIONS)
CACHE = Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache"))
#: Per set: its folder of images/ + (masks/ | annotations/), the label folder, the test count, the metric.
SETS = {"membrane": ("masks", 6, "miou"), "kangaroo": ("annotations", 33, "map_50")}


def kangaroo(cache: Path) -> Path:
    """The readable kangaroo photos with their boxes (the one truncated JPEG left out)."""
    from PIL import Image

    target = cache / "kangaroo"
    if not (target / "images").is_dir():
        with tarfile.open(SHARED / "kangaroo.tar.gz") as archive:
            archive.extractall(cache, filter="data")
    readable = cache / "kangaroo-readable"
    if not (readable / "done").is_file():
        for kind in ("images", "annotations"):
            (readable / kind).mkdir(parents=True, exist_ok=True)
        for photo in sorted((target / "images").iterdir()):
            try:
                Image.open(photo).load()
            except OSError:
                continue
            (readable / "images" / photo.name).symlink_to(photo.resolve())
            xml = target / "annotations" / f"{photo.stem}.xml"
            (readable / "annotations" / xml.name).symlink_to(xml.resolve())
        (readable / "done").touch()
    return readable


def split(source: Path, root: Path, labels: str, test: int) -> tuple[Path, Path]:
    """``root/train`` and ``root/test`` (images/ + labels/, links): the last ``test`` by name are the test set."""
    names = sorted(p.name for p in (source / "images").iterdir())
    parts = {"train": names[:-test], "test": names[-test:]}
    for part, chosen in parts.items():
        for kind in ("images", labels):
            (root / part / kind).mkdir(parents=True, exist_ok=True)
        for name in chosen:
            (root / part / "images" / name).symlink_to(source / "images" / name)
            label = next((source / labels).glob(f"{Path(name).stem}.*"))
            (root / part / labels / label.name).symlink_to(label.resolve())
    return root / "train", root / "test"


def summary(scores: dict, metric: str) -> dict[str, float]:
    robust = scores["corruptions"]
    seen = [v for n, v in robust["by_corruption"].items() if n not in UNSEEN]
    unseen = [v for n, v in robust["by_corruption"].items() if n in UNSEEN]
    families = {f"family {k}": v for k, v in robust["by_family"].items()}
    return {"clean": scores[metric], "corrupted": robust["mean"], "trained-on 13": statistics.mean(seen),
            "unseen 2": statistics.mean(unseen), **families}  # fmt: skip


def train_and_score(name: str, train: Path, test: Path, run: str, share: float, seed: int, epochs: int,
                    severities: list[int], out: Path) -> dict[str, float]:  # fmt: skip
    strategy, corrupt = run.split("+")[0], share if run.endswith("+corrupt") else 0.0
    labels, _, metric = SETS[name]
    data = {"images": str(train / "images"), labels: str(train / labels)}
    held = {"images": str(test / "images"), labels: str(test / labels)}
    if name == "membrane":
        from transferlab.tasks import segment as task

        budget = {"time_budget": 0}
    else:
        from transferlab.tasks import detect as task

        budget = {"epochs": epochs}
    trained = task.train(**data, strategy=strategy, corrupt=corrupt, seed=seed, accelerator="cpu", out=out,
                         **budget).run_dir  # fmt: skip
    scores = task.evaluate(trained, **held, corruptions="all", severities=severities, seed=0)
    return summary(scores, metric)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=list(SETS), default="membrane")
    parser.add_argument("--runs", default="full,full+corrupt", help="STRATEGY or STRATEGY+corrupt, comma-separated")
    parser.add_argument("--share", type=float, default=0.5, help="the --corrupt share of the +corrupt runs")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--severities", default="1,3,5")
    parser.add_argument("--epochs", type=int, default=12, help="kangaroo: the training epochs")
    args = parser.parse_args()
    severities = [int(s) for s in args.severities.split(",")]
    labels, test_count, metric = SETS[args.set]
    source = membrane(CACHE) if args.set == "membrane" else kangaroo(CACHE)
    results: dict[str, list[dict[str, float]]] = {}
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        train, test = split(source, Path(tmp) / "split", labels, test_count)
        for run in args.runs.split(","):
            for seed in map(int, args.seeds.split(",")):
                started = time.perf_counter()
                row = train_and_score(args.set, train, test, run, args.share, seed, args.epochs, severities,
                                      Path(tmp) / f"{run}-s{seed}")  # fmt: skip
                results.setdefault(run, []).append(row)
                print(f"{run} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items())
                      + f" ({time.perf_counter() - started:.0f} s training and scoring)", flush=True)  # fmt: skip
    keys = list(next(iter(results.values()))[0])
    print(f"\n{args.set}: test {metric}, mean +- std over seeds {args.seeds}, severities {args.severities}, "
          f"--corrupt {args.share:g} in the +corrupt runs\n")  # fmt: skip
    print("| training | " + " | ".join(keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    for name, rows in results.items():
        cells = [mean_spread([r[key] for r in rows]) for key in keys]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
