"""Multi-class segmentation on scenes assembled from real photos: CIFAR-10 objects (real 32x32
photos, scaled up and cut out as ellipses) pasted on crops of the kangaroo set's real photos;
11 classes (background + the 10 CIFAR classes), the mask the pasted ellipses. Held-out scenes use
CIFAR's held-out images on background photos that training never saw.

Two measurements:

    # scratch vs frozen vs full, the ImageNet Lite0 encoder, one budget, 3 seeds (240x320 scenes)
    .venv/bin/python benchmarks/segment_scenes.py compare [--seeds 0,1,2] [--strategies scratch,frozen,full]
    # the CPU defaults on the issue's size: 400 training scenes of 360x480 (+100 held out), no options
    .venv/bin/python benchmarks/segment_scenes.py defaults
    # the same with another resolution or step cap (how the defaults were chosen)
    .venv/bin/python benchmarks/segment_scenes.py defaults --img-size 256 --max-steps 675
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT
from segment_sets import SCENE_CLASSES as CLASSES
from segment_sets import scenes

COMPARE = {"train": 160, "val": 40, "height": 240, "width": 320, "img_size": 192, "epochs": 8, "batch_size": 8}


def compare(args: argparse.Namespace, cache: Path) -> None:
    from transferlab.tasks import segment

    budget = {k: COMPARE[k] for k in ("img_size", "epochs", "batch_size")}
    data = scenes(cache, COMPARE["train"], COMPARE["val"], COMPARE["height"], COMPARE["width"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies.split(","):
            scores, seconds = [], []
            for seed in map(int, args.seeds.split(",")):
                started = time.perf_counter()
                result = segment.train(data, out=Path(tmp) / f"{strategy}-{seed}", strategy=strategy, seed=seed,
                                       classes=",".join(CLASSES), accelerator="cpu", **budget)  # fmt: skip
                seconds.append(time.perf_counter() - started)
                scores.append(result.scores)
                print(f"{strategy} seed {seed}: mIoU {result.scores['miou']:.3f}, pixel accuracy "
                      f"{result.scores['pixel_accuracy']:.3f}, {seconds[-1]:.0f} s", flush=True)  # fmt: skip
                if seed == 0 and strategy in ("scratch", "full"):  # the README's pictures, as JPEG
                    from PIL import Image

                    picture = ROOT / "docs" / "images" / f"segment-scenes-{strategy}.jpg"
                    Image.open(result.run_dir / "overlays.png").convert("RGB").save(picture, quality=85)
            spread = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
            cells = [
                f"{statistics.mean(v):.3f} +- {spread(v):.3f}"
                for v in ([s["miou"] for s in scores], [s["pixel_accuracy"] for s in scores])
            ]
            rows.append(f"| {strategy} | {cells[0]} | {cells[1]} | {statistics.mean(seconds):.0f} |")
    print(f"budget: {COMPARE}")
    print("| strategy | held-out mIoU | pixel accuracy | seconds per run |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


def defaults(cache: Path, overrides: dict[str, int]) -> None:
    """`segment train DATA --classes ...` with nothing else (or only ``overrides``), on 400 + 100
    scenes of 360x480."""
    import resource

    from transferlab.tasks import segment

    os.environ["TRANSFERLAB_QUIET"] = "0"  # show what it chose and how long it expects
    data = scenes(cache, 400, 100, 360, 480, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = segment.train(data, out=Path(tmp) / "run", classes=",".join(CLASSES), **overrides)
        minutes = (time.perf_counter() - started) / 60
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"defaults {overrides or ''}: {minutes:.1f} min in all, held-out mIoU {result.scores['miou']:.3f}, "
          f"pixel accuracy {result.scores['pixel_accuracy']:.3f}, peak RSS {peak:.2f} GB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("compare", "defaults"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default="scratch,frozen,full")
    parser.add_argument("--img-size", type=int, help="defaults: override the chosen crop side")
    parser.add_argument("--max-steps", type=int, help="defaults: override the chosen step cap")
    parser.add_argument("--epochs", type=int, help="defaults: override the chosen epochs")
    args = parser.parse_args()
    cache = Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache"))
    if args.what == "compare":
        compare(args, cache)
    else:
        overrides = {
            key: value for key in ("img_size", "max_steps", "epochs") if (value := getattr(args, key)) is not None
        }
        defaults(cache, overrides)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
