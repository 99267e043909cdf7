"""Does transfer change what a classifier looks at? The pointing game on small objects: CIFAR-10
images (32 px) pasted at a random place on 96 px backgrounds (random crops of paintings, photos and
textures), so the object's box is known and covers a ninth of the image; Lite0 trained on them by
`transferlab classify`, ImageNet-transferred (`--strategy full`) against the same network from
scratch, over seeds; each test image's Grad-CAM map of its true class (`transferlab explain`, its
default size) is a hit when its peak lies in the pasted box. The image centre is the baseline.

    .venv/bin/python benchmarks/explain_transfer.py [--seeds 0,1,2] [--per-class 150] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import numpy as np
from PIL import Image

from common import ROOT, SHARED, cifar10_folder

CANVAS, TILE = 96, 32


def backgrounds() -> list[Image.Image]:
    """Pictures unlike CIFAR's objects to paste on: the paintings and photos, skimage's textures."""
    from skimage import data as sk

    found = [Image.open(p).convert("RGB") for p in sorted((SHARED / "styles").glob("*.jpg"))]
    for name in ("brick", "grass", "gravel", "coffee", "rocket", "astronaut"):
        pixels = getattr(sk, name)()
        found.append(Image.fromarray(pixels).convert("RGB"))
    return found


def composite_set(cifar: Path, out: Path, per_class: dict[str, int], seed: int = 0) -> dict[str, list]:
    """``out/<split>/<class>/*.png``; returns per split the list of (path, class, box)."""
    rng = np.random.default_rng(seed)
    pictures = backgrounds()
    classes = sorted(p.name for p in (cifar / "train").iterdir())
    sources = {c: sorted((cifar / "train" / c).glob("*.jpg")) for c in classes}
    taken = {c: iter(rng.permutation(len(sources[c]))) for c in classes}
    boxes: dict[str, list] = {}
    for split, count in per_class.items():
        boxes[split] = []
        for c in classes:
            (out / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                picture = pictures[rng.integers(len(pictures))]
                side = int(rng.integers(CANVAS, min(picture.size) + 1))
                x, y = (int(rng.integers(0, s - side + 1)) for s in picture.size)
                canvas = picture.crop((x, y, x + side, y + side)).resize((CANVAS, CANVAS), Image.BILINEAR)
                left, top = (int(v) for v in rng.integers(0, CANVAS - TILE + 1, 2))
                canvas.paste(Image.open(sources[c][next(taken[c])]).convert("RGB"), (left, top))
                path = out / split / c / f"{i:04d}.png"
                canvas.save(path)
                boxes[split].append((path, c, (left, top, left + TILE, top + TILE)))
    return boxes


def inside(point: tuple[float, float], box: tuple[int, ...]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def pointing(run: Path, test: list, out: Path) -> float:
    """The share of test images whose map of their true class peaks inside the object."""
    from transferlab.tasks.explain import explain

    hits = []
    for name in sorted({c for _, c, _ in test}):
        shown = [(p, box) for p, c, box in test if c == name]
        found = explain([p for p, _ in shown], run=run, class_name=name, out=out / name)
        hits += [inside(e.peak, box) for e, (_, box) in zip(found, shown)]
    return float(np.mean(hits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--per-class", type=int, default=150, help="training images a class")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--strategies", default="full,scratch")
    args = parser.parse_args()
    from transferlab.tasks import classify

    warnings.simplefilter("ignore")
    cache = ROOT / ".bench-cache"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        boxes = composite_set(cifar10_folder(cache), root / "set", {"train": args.per_class, "val": 30, "test": 30})
        centre = float(np.mean([inside((CANVAS / 2, CANVAS / 2), box) for _, _, box in boxes["test"]]))
        print(f"{len(boxes['test'])} test images; the centre as the map: {centre:.3f}", flush=True)
        rows: dict[str, list[tuple[float, float, float]]] = {}
        for strategy in args.strategies.split(","):
            for seed in map(int, args.seeds.split(",")):
                run = root / f"{strategy}-{seed}"
                started = time.perf_counter()
                classify.fit(str(root / "set"), backbone="tf_efficientnet_lite0", strategy=strategy,
                             img_size=CANVAS, epochs=args.epochs, seed=seed, out=run)  # fmt: skip
                seconds = time.perf_counter() - started
                accuracy = classify.evaluate(run, str(root / "set" / "test"))["accuracy"]
                hits = pointing(run, boxes["test"], root / f"maps-{strategy}-{seed}")
                rows.setdefault(strategy, []).append((accuracy, hits, seconds))
                print(json.dumps({"strategy": strategy, "seed": seed, "test_accuracy": accuracy,
                                  "pointing": hits, "train_seconds": round(seconds)}), flush=True)  # fmt: skip
    print("\n| strategy | test accuracy | pointing game (true class) | training s |\n| --- | --- | --- | --- |")
    for strategy, found in rows.items():
        cells = []
        for column in range(3):
            values = [r[column] for r in found]
            spread = f" +- {statistics.stdev(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.3f}{spread}" if column < 2 else f"{statistics.mean(values):.0f}")
        print(f"| {strategy} | " + " | ".join(cells) + " |")
    print(f"| the image's centre | - | {centre:.3f} | - |")


if __name__ == "__main__":
    main()
