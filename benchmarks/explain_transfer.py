"""Does transfer change what a classifier looks at? The pointing game on small objects: CIFAR-10
images (32 px) pasted at a random place on 96 px backgrounds (random crops of paintings, photos and
textures), so the object's box is known and covers a ninth of the image; Lite0 trained on them by
`transferlab classify`, ImageNet-transferred (`--strategy full`) against the same network from
scratch, over seeds; each test image's Grad-CAM map of its true class (`transferlab explain`, its
default size, and others with ``--sizes``) is a hit when its peak lies in the pasted box. The image
centre is the baseline. Runs are kept in .bench-cache/explain-transfer (a rerun scores them again).

    .venv/bin/python benchmarks/explain_transfer.py [--seeds 0,1,2] [--per-class 150] [--epochs 10]
        [--sizes default,96,192]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import numpy as np
from PIL import Image

from common import ROOT, SHARED, cifar10_folder, mean_spread

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


def pointing(run: Path, test: list, images: list, size: int | None) -> float:
    """The share of test images whose Grad-CAM map of their true class (explained at ``size``, None:
    `explain`'s default) peaks inside the object: `explain`'s maps, one load of the run for all."""
    from transferlab.tasks.explain import get_method, maps_of, peak_of
    from transferlab.tasks.explain.subjects import load_subject

    subject = load_subject(run, None, None, size)
    wanted = [subject.class_names.index(c) for _, c, _ in test]
    found = maps_of(subject, get_method("gradcam"), images, wanted, progress=False)
    return float(np.mean([inside(peak_of(m.heat), box) for m, (_, _, box) in zip(found, test)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--per-class", type=int, default=150, help="training images a class")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--strategies", default="full,scratch")
    parser.add_argument("--sizes", default="default,96,192", help="the shorter sides maps are made at")
    args = parser.parse_args()
    from transferlab.tasks import classify

    warnings.simplefilter("ignore")
    cache = ROOT / ".bench-cache"
    root = cache / "explain-transfer"
    sizes = [None if s == "default" else int(s) for s in args.sizes.split(",")]
    boxes = composite_set(cifar10_folder(cache), root / "set", {"train": args.per_class, "val": 30, "test": 30})
    centre = float(np.mean([inside((CANVAS / 2, CANVAS / 2), box) for _, _, box in boxes["test"]]))
    print(f"{len(boxes['test'])} test images; the centre as the map: {centre:.3f}", flush=True)
    images = [Image.open(p).convert("RGB") for p, _, _ in boxes["test"]]  # read once for every run and size
    rows: dict[str, list[list[float]]] = {}
    for strategy in args.strategies.split(","):
        for seed in map(int, args.seeds.split(",")):
            run = root / f"{strategy}-{seed}"
            started = time.perf_counter()
            if not (run / "report.html").is_file():
                classify.fit(str(root / "set"), backbone="tf_efficientnet_lite0", strategy=strategy,
                             img_size=CANVAS, epochs=args.epochs, seed=seed, out=run)  # fmt: skip
            seconds = time.perf_counter() - started
            accuracy = classify.evaluate(run, str(root / "set" / "test"))["accuracy"]
            hits = [pointing(run, boxes["test"], images, size) for size in sizes]
            rows.setdefault(strategy, []).append([accuracy, *hits])
            print(json.dumps({"strategy": strategy, "seed": seed, "test_accuracy": accuracy,
                              "pointing": dict(zip(args.sizes.split(","), hits)),
                              "train_seconds": round(seconds)}), flush=True)  # fmt: skip
    header = " | ".join(f"pointing at {s}" for s in args.sizes.split(","))
    print(f"\n| strategy | test accuracy | {header} |\n| --- |" + " --- |" * (1 + len(sizes)))
    for strategy, found in rows.items():
        cells = [mean_spread([r[column] for r in found]) for column in range(1 + len(sizes))]
        print(f"| {strategy} | " + " | ".join(cells) + " |")
    print("| the image's centre | - |" + f" {centre:.3f} |" * len(sizes))


if __name__ == "__main__":
    main()
