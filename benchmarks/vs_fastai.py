"""End to end against fastai's ``fine_tune`` on real photos at 224 px: the same ImageNet
EfficientNet-Lite0 weights, epochs, resolution and batch size, in the same process.

The photos are three CIFAR-10 classes (``--classes``; ``--train`` images a class from the shared
training set, ``--val`` a class from its validation set), upscaled to 224 px by both tools.
fastai runs its recipe as its documentation teaches: ``Resize(224)`` + ``aug_transforms()``,
``fine_tune(E - 1, freeze_epochs=1)`` (E epochs in all: one with the body frozen, then all
layers with discriminative learning rates), its default learning rate, 32-bit on the CPU.
transferlab runs ``classify --strategy full --epochs E`` with its defaults. Wall time counts
everything from the call to the trained model (data reading and decoding included).

fastai is not a transferlab dependency; run it in an environment that has both:

    python -m venv /tmp/fa && /tmp/fa/bin/pip install fastai -e .
    cd benchmarks && /tmp/fa/bin/python vs_fastai.py [--epochs 5] [--seeds 0,1]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import cifar10_folder


def photo_set(cache: Path, classes: list[str], train: int, val: int) -> Path:
    """``train/<class>`` and ``val/<class>`` links to the first CIFAR-10 images of each class."""
    root = cifar10_folder(cache)
    target = cache / f"photos-{'-'.join(classes)}-{train}-{val}"
    if not target.is_dir():
        for split, count in (("train", train), ("val", val)):
            for name in classes:
                (target / split / name).mkdir(parents=True)
                for path in sorted((root / split / name).iterdir())[:count]:
                    os.link(path, target / split / name / path.name)
    return target


def run_fastai(data: Path, epochs: int, batch: int, seed: int) -> tuple[float, float]:
    """(final validation accuracy, wall seconds) of fastai's fine_tune on the same Lite0 weights."""
    import torch
    from fastai.vision.all import (
        ImageDataLoaders,
        Learner,
        Normalize,
        Resize,
        accuracy,
        aug_transforms,
        set_seed,
    )

    from transferlab import backbones

    start = time.perf_counter()
    set_seed(seed, reproducible=True)
    dls = ImageDataLoaders.from_folder(
        data, train="train", valid="val", item_tfms=Resize(224), bs=batch,
        batch_tfms=[*aug_transforms(), Normalize.from_stats([0.5] * 3, [0.5] * 3)],  # Lite0's TF normalisation
    )  # fmt: skip
    model = backbones.create("tf_efficientnet_lite0", num_classes=len(dls.vocab)).model
    head = {id(p) for p in model.get_classifier().parameters()}

    def splitter(m: torch.nn.Module) -> list[list[torch.nn.Parameter]]:
        return [[p for p in m.parameters() if id(p) not in head], list(m.get_classifier().parameters())]

    learn = Learner(dls, model, metrics=accuracy, splitter=splitter)
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs - 1, freeze_epochs=1)
        seconds = time.perf_counter() - start
        return float(learn.validate()[1]), seconds


def run_transferlab(data: Path, epochs: int, batch: int, seed: int, out: Path) -> tuple[float, float, str]:
    from transferlab.runs import read_run
    from transferlab.tasks import classify

    start = time.perf_counter()
    result = classify.fit(data, out=out, strategy="full", epochs=epochs, batch_size=batch, img_size=224, seed=seed)
    seconds = time.perf_counter() - start
    chosen = read_run(out).extra["performance"]
    return result.history[-1]["val_acc"], seconds, f"{chosen['precision']}, channels_last={chosen['channels_last']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="airplane,bird,cat")
    parser.add_argument("--train", type=int, default=150, help="training images a class")
    parser.add_argument("--val", type=int, default=100, help="validation images a class")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()
    import torch

    cache = Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", Path(__file__).resolve().parents[1] / ".bench-cache"))
    data = photo_set(cache, args.classes.split(","), args.train, args.val)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {data.name}, {args.epochs} epochs at 224 px")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in map(int, args.seeds.split(",")):
            ours = run_transferlab(data, args.epochs, args.batch_size, seed, Path(tmp) / f"tl-{seed}")
            theirs = run_fastai(data, args.epochs, args.batch_size, seed)
            rows.append((seed, ours, theirs))
            print(
                f"seed {seed}: transferlab {ours[0]:.1%} in {ours[1]:.0f} s ({ours[2]}); "
                f"fastai fine_tune {theirs[0]:.1%} in {theirs[1]:.0f} s; time ratio {ours[1] / theirs[1]:.2f}x",
                flush=True,
            )
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    print(
        f"mean over {len(rows)} seed(s): transferlab {mean([r[1][0] for r in rows]):.1%} in "
        f"{mean([r[1][1] for r in rows]):.0f} s, fastai {mean([r[2][0] for r in rows]):.1%} in "
        f"{mean([r[2][1] for r in rows]):.0f} s: {mean([r[1][1] for r in rows]) / mean([r[2][1] for r in rows]):.2f}x"
    )


if __name__ == "__main__":
    main()
