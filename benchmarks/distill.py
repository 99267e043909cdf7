"""Does distillation pay on small data? A fine-tuned EfficientNet-Lite2 teacher, and students
trained the same epochs with the same options: alone (classify), distilled (`transferlab distill`,
its defaults: KD, T 4, alpha 0.5), distilled with unlabelled images added (`--unlabelled`); and a
small network from scratch (ResNet-10t, random weights), alone and distilled. Each run is scored
on test images no run saw (`classify.evaluate`), with its CPU latency at batch 1 (`speed`).

Sets, each built once in .bench-cache/distill-SET from shared or Debian data: 200 labelled
training images a class, 50 validation (the best epoch), 200 unlabelled and 100 test a class.
- ``cifar10``: CIFAR-10 (../shared/data/cifar10.tar.gz), 32x32 photos, 10 classes;
- ``fashion``: Fashion-MNIST (Debian's dataset-fashion-mnist), 28x28 grey, 10 classes.

    .venv/bin/python benchmarks/distill.py --set cifar10 --seeds 0,1,2 [--epochs 10] [--img-size 64]
        [--students alone,kd,kd+unlabelled,scratch,scratch+kd]   (also: dist, dist+unlabelled, scratch+dist)
        [--student-size N]   (the students at another input side than the teacher's)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, cifar10_folder, mean_spread, training_folder

PARTS = {"train": 200, "val": 50, "unlabelled": 200, "test": 100}  # images a class


def _write_parts(per_class: dict[str, list], target: Path, save) -> Path:
    """Each class's items cut into the PARTS in order, written by ``save(item, path)``."""
    for name, items in per_class.items():
        start = 0
        for part, count in PARTS.items():
            folder = target / part / ("" if part == "unlabelled" else name)
            folder.mkdir(parents=True, exist_ok=True)
            for i, item in enumerate(items[start : start + count]):
                save(item, folder / f"{name}-{start + i}.png")
            start += count
    (target / "done").touch()
    return target


def build(name: str) -> Path:
    target = ROOT / ".bench-cache" / f"distill-{name}"
    if (target / "done").is_file():
        return target
    if name == "cifar10":
        train = cifar10_folder(ROOT / ".bench-cache") / "train"
        per_class = {c.name: sorted(c.iterdir()) for c in sorted(train.iterdir()) if c.is_dir()}
        return _write_parts(per_class, target, lambda src, dst: dst.symlink_to(src.resolve()))
    from PIL import Image

    from transferlab.data import load_data

    splits = load_data("fashion-mnist", seed=0)
    images = splits.train
    per_class = {c.replace("/", "-"): [i for i in range(len(images)) if images.labels[i] == k]  # T-shirt/top
                 for k, c in enumerate(splits.classes)}  # fmt: skip
    return _write_parts(per_class, target, lambda i, dst: Image.fromarray(images.images[i]).save(dst))


def teacher_run(name: str, epochs: int, img_size: int) -> tuple[Path, Path, Path]:
    """The set's parts, its train/ + val/ as one DATA folder, and the Lite2 teacher fine-tuned on
    it (trained once, kept in .bench-cache/distill-runs/SET)."""
    from transferlab.tasks import classify

    data = build(name)
    runs = ROOT / ".bench-cache" / "distill-runs" / name
    folder = training_folder(data, runs / "data")
    teacher = runs / f"teacher-lite2-e{epochs}-{img_size}"
    if not (teacher / "run.json").is_file():
        started = time.perf_counter()
        classify.train(str(folder), out=teacher, backbone="tf_efficientnet_lite2", seed=0, img_size=img_size,
                       epochs=epochs)  # fmt: skip
        print(f"teacher trained in {time.perf_counter() - started:.0f} s", flush=True)
    return data, folder, teacher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("cifar10", "fashion"), default="cifar10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--students", default="alone,kd,kd+unlabelled,scratch,scratch+kd")
    parser.add_argument("--student-size", type=int, help="the students' input side (default: the teacher's)")
    parser.add_argument("--results", type=Path, default=ROOT / ".bench-cache" / "distill.jsonl")
    args = parser.parse_args()
    from transferlab.tasks import classify, distill

    data, folder, teacher = teacher_run(args.set, args.epochs, args.img_size)
    runs = folder.parent
    size = args.student_size or args.img_size
    resized = "" if size == args.img_size else f"-s{size}"  # the students' own input side, in their folder names
    common = {"img_size": size, "epochs": args.epochs}
    found: dict[str, list[tuple[float, float]]] = {"teacher": [(_test(teacher, data), 0.0)]}
    for seed in map(int, args.seeds.split(",")):
        for student in args.students.split(","):
            out = runs / f"{student}-e{args.epochs}-{args.img_size}{resized}-seed{seed}"
            parts = student.split("+")  # alone | kd | dist | scratch, then +kd / +dist / +unlabelled
            options = {**common, "seed": seed}
            if parts[0] == "scratch":
                options.update(backbone="resnet10t", strategy="scratch", lr=3e-3)
            started = time.perf_counter()
            if student in ("alone", "scratch"):
                classify.train(str(folder), out=out, **options)
            else:
                extra = {"unlabelled": str(data / "unlabelled")} if "unlabelled" in parts else {}
                method = "dist" if "dist" in parts else "kd"
                distill.train(str(teacher), str(folder), out=out, method=method, **options, **extra)
            seconds = time.perf_counter() - started
            accuracy = _test(out, data)
            found.setdefault(student, []).append((accuracy, seconds))
            record = {"set": args.set, "student": student, "seed": seed, "test_accuracy": accuracy,
                      "seconds": seconds, **common, "teacher_size": args.img_size, **_speed(out)}  # fmt: skip
            with args.results.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)
    print(f"\n{args.set}: test accuracy on {PARTS['test']} images a class, {args.epochs} epochs at {args.img_size} px")
    print("| network | test accuracy | seeds | train s |")
    print("| --- | --- | --- | --- |")
    for who, rows in found.items():
        print(f"| {who} | {mean_spread([a for a, _ in rows])} | {len(rows)} | "
              f"{statistics.mean(s for _, s in rows):.0f} |")  # fmt: skip


def _speed(run: Path) -> dict[str, float]:
    """A distilled run's CPU latency at batch 1 beside its teacher's (its distillation.json)."""
    table = run / "distillation.json"
    if not table.is_file():
        return {}
    teacher, student = json.loads(table.read_text())["rows"][:2]
    key = "latency ms (batch 1, CPU)"
    return {"teacher_ms": teacher[key], "student_ms": student[key], "speed_up": student.get("speed-up")}


def _test(run: Path, data: Path) -> float:
    from transferlab.tasks import classify

    return float(classify.evaluate(run, str(data / "test"))["accuracy"])


if __name__ == "__main__":
    main()
