"""Shared helpers for the benchmarks: the real CIFAR-10 images from ../shared/data."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; on the device machine, a carried copy (see README.md).
SHARED = Path(os.environ.get("TRANSFERLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))


def mean_spread(values: list[float], digits: int = 3) -> str:
    """``mean +- std`` of a table cell (the mean alone for one value)."""
    import statistics

    mean = f"{statistics.mean(values):.{digits}f}"
    return f"{mean} +- {statistics.stdev(values):.{digits}f}" if len(values) > 1 else mean


def training_folder(parts: Path, folder: Path) -> Path:
    """``parts``'s train/ and val/ linked into ``folder`` as one DATA folder, so its test/ (and any
    other part) stays out of sight of training; a link to another set's part is replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("train", "val"):
        link, target = folder / part, (parts / part).resolve()
        if link.is_symlink() and link.resolve() != target:
            link.unlink()
        if not link.exists():
            link.symlink_to(target)
    return folder


def cifar10_folder(cache: Path) -> Path:
    """Extract ../shared/data/cifar10.tar.gz once (45,000 train / 5,000 val JPEGs) and return its root."""
    archive = SHARED / "cifar10.tar.gz"
    if not archive.is_file():
        raise SystemExit(f"benchmark data missing: {archive}")
    target = cache / "cifar10"
    if not (target / "train").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as handle:
            handle.extractall(cache, filter="data")
        if not (target / "train").is_dir():  # the archive may hold the folders at its top level
            target = cache
    return target


def digit_folders(cache: Path) -> dict[str, Path]:
    """../shared/data/digits-mnist-usps.npz written once as class folders: ``mnist`` (10,000 train /
    2,000 val), ``usps`` (7,000 / 1,000), and ``usps100`` (10 training images a class, seed 0)."""
    import numpy as np
    from PIL import Image

    archive = SHARED / "digits-mnist-usps.npz"
    if not archive.is_file():
        raise SystemExit(f"benchmark data missing: {archive}")
    folders = {name: cache / name for name in ("mnist", "usps", "usps100")}
    if all((f / "done").is_file() for f in folders.values()):
        return folders
    digits = np.load(archive)

    def write(images: np.ndarray, labels: np.ndarray, root: Path) -> None:
        for i, (image, label) in enumerate(zip(images, labels)):
            (root / str(int(label))).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / str(int(label)) / f"{i:05d}.png")

    for domain in ("mnist", "usps"):
        for split in ("train", "val"):
            write(digits[f"{domain}_{split}_x"], digits[f"{domain}_{split}_y"], folders[domain] / split)
    labels = digits["usps_train_y"]
    rng = np.random.default_rng(0)
    few = np.concatenate([rng.choice(np.flatnonzero(labels == c), 10, replace=False) for c in range(10)])
    write(digits["usps_train_x"][few], labels[few], folders["usps100"])
    for folder in folders.values():
        (folder / "done").touch()
    return folders


def digit_judge(folder: Path, out: Path) -> Path:
    """A LeNet trained with ``transferlab classify`` on the real digits of ``folder`` (train/val,
    32 px): the pretrained network that reads generated digits (FID/KID features, class consistency)."""
    from transferlab.tasks import classify

    if not (out / "run.json").is_file():
        classify.fit(
            str(folder), backbone="lenet", strategy="scratch", img_size=32, epochs=8, lr=3e-3, crop_scale=0.8, out=out
        )
    return out


def real_pixels(folder: Path, img_size: int = 32):
    """Every image of ``folder`` as N x 3 x S x S uint8 (the real set FID/KID compare with)."""
    from transferlab.data import load_images
    from transferlab.data.loaders import decode_all

    images, _, _ = load_images(str(folder))
    return decode_all(images, img_size)


def judge_generator(run_dir: Path, judge: Path, real, count: int = 1000, seed: int = 0) -> dict[str, float]:
    """A GAN run's samples read by a classifier run: FID/KID on its features against ``real``,
    diversity (generated and real), and for a conditional GAN class consistency and coverage."""
    import torch

    from transferlab import metrics
    from transferlab.runs import read_run
    from transferlab.tasks import gan

    generator, spec = gan.load_generator(run_dir, torch.device("cpu"))
    images = gan.sample_images(generator, spec, count, torch.Generator().manual_seed(seed))
    scores = metrics.compute("fid_kid", real=real, fake=images, extractor=f"run:{judge}")
    out = {"fid": scores.fid, "kid": scores.kid, "diversity": scores.diversity, "real_diversity": scores.real_diversity}
    if spec["num_classes"]:
        labels = torch.arange(count) % spec["num_classes"]
        pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        names = read_run(run_dir, model_kind="gan").class_names
        read = metrics.compute("class_consistency", images=pixels, labels=labels, classifier=str(judge), names=names)
        out |= {"consistency": read["consistency"], "coverage": read["coverage"]}
    return out


def side_by_side(images: list[Path], labels: list[str], out: Path) -> None:
    """Pictures in one row, each with a caption above it (the README's comparison figures), at
    their own pixel size: ``reports.plots.image_gallery`` draws ~2-inch matplotlib thumbnails,
    which would shrink an 8 x 8 grid of 64 px samples past reading."""
    from PIL import Image, ImageDraw

    opened = [Image.open(p).convert("RGB") for p in images]
    canvas = Image.new(
        "RGB", (sum(i.width for i in opened) + 12 * (len(opened) - 1), max(i.height for i in opened) + 20), "white"
    )
    draw, x = ImageDraw.Draw(canvas), 0
    for image, label in zip(opened, labels):
        canvas.paste(image, (x, 20))
        draw.text((x + 4, 4), label, fill="black")
        x += image.width + 12
    canvas.save(out)


def parse_options(pairs: str) -> dict[str, object]:
    """Options as ``KEY=VALUE;...`` (a benchmark's --options/--base) with numbers as numbers."""
    out: dict[str, object] = {}
    for pair in filter(None, pairs.split(";")):
        key, value = pair.split("=", 1)
        for kind in (int, float):
            try:
                out[key] = kind(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out
