"""A segmenter run's int8 check (``quantize``'s ``Int8Check``): calibration on a seeded sample of
DATA's training images, the mIoU of the fp32 and int8 model on its held-out images, split as the
run's training split them. The exported model takes S x S images (the run's training side), so
every image is resized to S x S and the logits back to its mask's size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from transferlab import metrics
from transferlab.metrics.segmentation import confusion
from transferlab.progress import track
from transferlab.runs import SEGMENTER, read_run
from transferlab.tasks.quantize import SCORING, Int8Check, calibration_sample, run_data, same_classes
from transferlab.tasks.segment.data import Split, load_segmentation

BATCH = 8


def int8_check(run_dir: str | Path, *, calibration: str | int, data: str | None, calibrate: bool) -> Int8Check:
    """DATA (``--data``, or the run's own --images/--masks) read and split as the run's training
    read it: ``calibration`` of its training images calibrate, its held-out images are scored."""
    info = read_run(run_dir, model_kind=SEGMENTER)
    opts = info.extra.get("options", {})
    run_data(data, bool(opts.get("images") and opts.get("masks")), "segment", "its images and masks")
    read = load_segmentation(
        data, images=opts.get("images"), masks=opts.get("masks"), val_images=opts.get("val_images"),
        val_masks=opts.get("val_masks"), classes=opts.get("classes"), ignore_index=opts.get("ignore_index", 255),
        val_fraction=opts.get("val_fraction", 0.2), seed=opts.get("seed", 0),
    )  # fmt: skip
    same_classes(read.classes, info.class_names, read.description)
    side = int(info.model["img_size"])
    chosen = read.train.subset(calibration_sample(calibration, len(read.train), "a segmenter")) if calibrate else None
    return Int8Check(
        calibration=None if chosen is None else lambda batch: (x for x, _ in _batches(chosen, side, batch)),
        calibration_images=0 if chosen is None else len(chosen),
        score=lambda fp32, int8: scores(fp32, int8, read.val, side, read.classes, read.ignore_index),
        measured_on=f"{len(read.val)} held-out images of {read.description}, at {side} x {side}",
        metric="mIoU",
        side=side,
    )


def _batches(split: Split, side: int, batch: int) -> Iterator[tuple[np.ndarray, list[int]]]:
    """N x 3 x side x side float32 batches in [0, 1], as the exported segmenter takes them, with
    the indices of their images."""
    for start in range(0, len(split), batch):
        index = list(range(start, min(start + batch, len(split))))
        x = torch.cat([F.interpolate(split.images[i][None].float().div(255), size=(side, side), mode="bilinear",
                                     antialias=True, align_corners=False) for i in index])  # fmt: skip
        yield x.contiguous().numpy(), index


def scores(fp32: Any, int8: Any, split: Split, side: int, classes: list[str], ignore: int) -> dict[str, float]:
    """mIoU of both sessions on ``split`` (each mask at its own size) and the share of labelled
    pixels whose class they agree on."""
    name = fp32.get_inputs()[0].name
    totals = [torch.zeros(len(classes), len(classes), dtype=torch.long) for _ in range(2)]
    agree = labelled = 0
    for x, index in track(_batches(split, side, BATCH), SCORING, -(-len(split) // BATCH)):
        outputs = [torch.from_numpy(session.run(None, {name: x})[0]) for session in (fp32, int8)]
        for row, i in enumerate(index):
            mask = split.masks[i]
            a, b = (F.interpolate(logits[row : row + 1], size=mask.shape, mode="bilinear", align_corners=False)
                    [0].argmax(0) for logits in outputs)  # fmt: skip
            for total, prediction in zip(totals, (a, b), strict=True):
                total += confusion(prediction, mask, len(classes), ignore)
            valid = mask != ignore
            agree, labelled = agree + int((a == b)[valid].sum()), labelled + int(valid.sum())
    fp32_miou, int8_miou = (metrics.compute("segmentation", matrix=total, classes=classes)["miou"] for total in totals)
    return {"fp32": fp32_miou, "int8": int8_miou, "agreement": agree / max(labelled, 1), "images": len(split)}
