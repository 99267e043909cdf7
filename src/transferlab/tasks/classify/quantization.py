"""A classifier run's int8 check (``quantize``'s ``Int8Check``): calibration on a seeded sample of
its training images (or a folder), top-1 accuracy of the fp32 and int8 model on its held-out images,
as the run's classifier sees them at evaluation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.data import DatasetSplits, load_data, load_images
from transferlab.data.collections import LabeledImages
from transferlab.data.loaders import make_batches
from transferlab.errors import DataError, UsageError
from transferlab.progress import track
from transferlab.runs import CLASSIFIER, read_run
from transferlab.tasks.quantize import SCORING, Int8Check, calibration_count, same_classes

BATCH = 32


def int8_check(run_dir: str | Path, *, calibration: str | int, data: str | None, calibrate: bool) -> Int8Check:
    """The run's DATA (or ``data``) split as training split it: ``calibration`` of its training
    images (or the images of a folder) calibrate, its held-out images are scored; without them, the
    calibration images are, by top-1 agreement with fp32."""
    info = read_run(run_dir, model_kind=CLASSIFIER)
    splits, source = _run_parts(info, data)
    images = _calibration_images(calibration, splits, 0) if calibrate else None
    if splits is not None and len(splits.val):
        held_out, measured_on, by_agreement = splits.val, f"{len(splits.val)} held-out images of {source}", False
    elif images is not None:
        held_out, measured_on, by_agreement = images, f"{len(images)} calibration images (no held-out ones)", True
    else:
        raise UsageError("the run records no held-out images to check the int8 model on",
                         "pass --data DATA (the run's classes)")  # fmt: skip
    preprocessing = info.preprocessing
    return Int8Check(
        calibration=None if images is None else lambda batch: (x for x, _ in arrays(images, preprocessing, batch)),
        calibration_images=0 if images is None else len(images),
        score=lambda fp32, int8: scores(fp32, int8, held_out, preprocessing),
        measured_on=measured_on,
        metric="top-1 agreement" if by_agreement else "accuracy",
        side=int(preprocessing["input_size"][-1]),
        by_agreement=by_agreement,
    )


def arrays(
    images: LabeledImages, preprocessing: dict[str, Any], batch: int = BATCH
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of ``images`` as the run's classifier sees them at evaluation (N x C x H x W float32)."""
    source = make_batches(images, preprocessing, torch.device("cpu"), evaluation=True)
    for x, y in source.batches(batch, train=False):
        yield x.float().contiguous().numpy(), y.numpy()


def scores(fp32: Any, int8: Any, images: LabeledImages, preprocessing: dict[str, Any]) -> dict[str, float]:
    """Top-1 accuracy of both sessions and their agreement, on the same batches."""
    name = fp32.get_inputs()[0].name
    right32 = right8 = agree = seen = 0
    for x, y in track(arrays(images, preprocessing), SCORING, -(-len(images) // BATCH)):
        a, b = fp32.run(None, {name: x})[0].argmax(1), int8.run(None, {name: x})[0].argmax(1)
        right32, right8 = right32 + int((a == y).sum()), right8 + int((b == y).sum())
        agree, seen = agree + int((a == b).sum()), seen + len(y)
    return {"fp32": right32 / seen, "int8": right8 / seen, "agreement": agree / seen, "images": seen}


def _run_parts(info: Any, data: str | None) -> tuple[DatasetSplits | None, str]:
    """The run's DATA split as its training split it (or ``data``'s), and what it is called."""
    source = data or info.extra.get("data_source")
    if source is None:
        return None, ""
    opts = info.extra.get("options", {})
    try:
        splits = load_data(source, val_fraction=opts.get("val_fraction", 0.2), seed=opts.get("seed", 0),
                           data_root=opts.get("data_root"))  # fmt: skip
    except DataError:
        if data:
            raise
        raise DataError(
            f"the run's data {source} is no longer readable", "pass --data DATA (the run's classes, held-out part)"
        ) from None
    same_classes(splits.classes, info.class_names, str(source))
    if not data and opts.get("shots"):
        splits = splits.few_shot(opts["shots"], opts.get("seed", 0))
    return splits, str(source)


def _calibration_images(calibration: str | int, splits: DatasetSplits | None, seed: int) -> LabeledImages:
    if isinstance(calibration, str) and not calibration.isdigit():
        images, _, _ = load_images(calibration)
        return images
    count = calibration_count(calibration)
    if splits is None:
        raise UsageError(
            "the run records no training data to calibrate on", "pass --data DATA or --calibration DIR (images)"
        )
    chosen = np.random.default_rng(seed).permutation(len(splits.train))[:count]
    return splits.train.subset(np.sort(chosen))
