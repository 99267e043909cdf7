"""Choosing classify's default body rate: ``--strategy full`` at several ``--body-lr-mult`` on sets
unlike each other, each run scored on test images no run saw (``classify.evaluate``).

Sets (built once in .bench-cache/body-rate-SET from shared or Debian data; train / val / test
images a class, val choosing the best epoch):
- ``cifar10-64``: CIFAR-10 photos (32 px) at 64 px, 10 classes, 200 / 50 / 100 (distill.py's cut), 10 epochs;
- ``fashion-64``: Fashion-MNIST (28 px grey) at 64 px, 10 classes, the same cut, 10 epochs;
- ``cifar3-224``: CIFAR-10's airplane / bird / cat at 224 px, 150 / 50 / 100, 5 epochs (vs_fastai.py's setting);
- ``cifar10-224-10shot``: all ten classes at 224 px with 10 / 10 / 50: the few-shot case, 15 epochs;
- ``kangaroo-224``: crops of the kangaroo photos (the boxes, and as many box-sized crops of the
  same photos that miss every box): large natural photos near ImageNet's (it has a wallaby class),
  two classes, 30 / 20 / the rest, 10 epochs.

    cd benchmarks && ../.venv/bin/python body_rate.py [--sets cifar10-64,...] [--mults 0.1,0.3,1.0] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, cifar10_folder, mean_spread, training_folder
from robust_training import kangaroo

CACHE = ROOT / ".bench-cache"


@dataclass(frozen=True)
class Setting:
    img_size: int
    epochs: int
    build: Callable[[], Path]  # the set's folder with train/, val/ and test/ class folders


def _link_all(files: list[Path], folder: Path) -> None:
    """Hard links to ``files`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        if not (folder / path.name).exists():
            os.link(path, folder / path.name)


def _link_parts(target: Path, per_class: dict[str, list[Path]], counts: dict[str, int | None]) -> Path:
    """Each class's files cut in order into the parts (``None``: the rest), as hard links."""
    if (target / "done").is_file():
        return target
    for name, files in per_class.items():
        start = 0
        for part, count in counts.items():
            end = len(files) if count is None else start + count
            _link_all(files[start:end], target / part / name)
            start = end
    (target / "done").touch()
    return target


def _cifar(classes: list[str] | None, counts: dict[str, int], name: str) -> Path:
    """train/ and val/ from the shared training split, test/ from its validation split."""
    root = cifar10_folder(CACHE)
    names = classes or sorted(p.name for p in (root / "train").iterdir())
    per_class = {c: sorted((root / "train" / c).iterdir()) for c in names}
    target = _link_parts(CACHE / f"body-rate-{name}", per_class, {k: counts[k] for k in ("train", "val")})
    for c in names:
        _link_all(sorted((root / "val" / c).iterdir())[: counts["test"]], target / "test" / c)
    return target


def _distill_cut(name: str) -> Path:
    from distill import build

    return build(name)  # train/ val/ test/ (and unlabelled/, unused here)


def _kangaroo_crops() -> Path:
    """Box crops (a 10% margin) and, per box, one crop of the same size elsewhere in the photo that
    overlaps no box by more than a tenth of its area."""
    from PIL import Image

    target = CACHE / "body-rate-kangaroo-224"
    if (target / "done").is_file():
        return target
    source = kangaroo(CACHE)  # the readable photos and their boxes
    crops = CACHE / "kangaroo-crops"
    rng = random.Random(0)
    per_class: dict[str, list[Path]] = {"kangaroo": [], "background": []}
    for xml in sorted((source / "annotations").glob("*.xml")):
        image = Image.open(source / "images" / f"{xml.stem}.jpg").convert("RGB")
        boxes = [tuple(int(float(b.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax"))
                 for b in ElementTree.parse(xml).getroot().iter("bndbox")]  # fmt: skip
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            w, h = x1 - x0, y1 - y0
            if min(w, h) < 32:
                continue
            margin_x, margin_y = w // 10, h // 10
            box = (max(0, x0 - margin_x), max(0, y0 - margin_y), min(image.width, x1 + margin_x),
                   min(image.height, y1 + margin_y))  # fmt: skip
            per_class["kangaroo"].append(_save(image.crop(box), crops / "kangaroo" / f"{xml.stem}-{i}.jpg"))
            empty = _empty_crop(image.size, (box[2] - box[0], box[3] - box[1]), boxes, rng)
            if empty is not None:
                per_class["background"].append(_save(image.crop(empty), crops / "background" / f"{xml.stem}-{i}.jpg"))
    balanced = min(map(len, per_class.values()))
    for name, files in per_class.items():
        rng.shuffle(files)
        per_class[name] = files[:balanced]
    return _link_parts(target, per_class, {"train": 30, "val": 20, "test": None})


def _save(image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, quality=95)
    return path


def _empty_crop(size: tuple[int, int], crop: tuple[int, int], boxes: list[tuple[int, ...]], rng: random.Random):
    (width, height), (w, h) = size, (min(crop[0], size[0] // 2), min(crop[1], size[1] // 2))
    for _ in range(200):
        x, y = rng.randrange(0, width - w + 1), rng.randrange(0, height - h + 1)
        overlap = sum(max(0, min(x + w, b[2]) - max(x, b[0])) * max(0, min(y + h, b[3]) - max(y, b[1])) for b in boxes)
        if overlap <= 0.1 * w * h:
            return (x, y, x + w, y + h)
    return None


THREE, TEN_SHOT = ["airplane", "bird", "cat"], {"train": 10, "val": 10, "test": 50}
SETS = {
    "cifar10-64": Setting(64, 10, lambda: _distill_cut("cifar10")),
    "fashion-64": Setting(64, 10, lambda: _distill_cut("fashion")),
    "cifar3-224": Setting(224, 5, lambda: _cifar(THREE, {"train": 150, "val": 50, "test": 100}, "cifar3-224")),
    "cifar10-224-10shot": Setting(224, 15, lambda: _cifar(None, TEN_SHOT, "cifar10-10shot")),
    "kangaroo-224": Setting(224, 10, _kangaroo_crops),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--mults", default="0.1,0.3,1.0")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--results", type=Path, default=CACHE / "body-rate.jsonl")
    args = parser.parse_args()
    from transferlab.tasks import classify

    found: dict[tuple[str, float], list[float]] = {}
    for seed in map(int, args.seeds.split(",")):
        for name in args.sets.split(","):
            setting = SETS[name]
            parts = setting.build()
            data = training_folder(parts, parts.with_name(parts.name + "-data"))
            for mult in map(float, args.mults.split(",")):
                out = CACHE / "body-rate-runs" / f"{name}-x{mult}-seed{seed}"
                started = time.perf_counter()
                if not (out / "run.json").is_file():
                    classify.train(str(data), out=out, strategy="full", body_lr_mult=mult, seed=seed,
                                   img_size=setting.img_size, epochs=setting.epochs)  # fmt: skip
                accuracy = float(classify.evaluate(out, str(parts / "test"))["accuracy"])
                record = {"set": name, "body_lr_mult": mult, "seed": seed, "test_accuracy": accuracy,
                          "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
                with args.results.open("a") as handle:
                    handle.write(json.dumps(record) + "\n")
                print(json.dumps(record), flush=True)
                found.setdefault((name, mult), []).append(accuracy)
    mults = list(map(float, args.mults.split(",")))
    print("\n| set | " + " | ".join(f"x{m}" for m in mults) + " |")
    print("| --- |" + " --- |" * len(mults))
    for name in args.sets.split(","):
        print(f"| {name} | " + " | ".join(mean_spread(found.get((name, m), [float("nan")])) for m in mults) + " |")


if __name__ == "__main__":
    main()
