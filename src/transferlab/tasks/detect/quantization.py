"""A detector run's int8 check (``quantize``'s ``Int8Check``): calibration on a seeded sample of
DATA's training images, the COCO mAP of the fp32 and int8 model on its held-out images, split as
the run's training split them, each image at its own size (the exported graph takes any size and
resizes inside). Only the convolutions are quantized: the box decoding and non-maximum suppression
stay in float, where int8 would move the boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from transferlab import metrics
from transferlab.errors import RunError
from transferlab.progress import track
from transferlab.runs import DETECTOR, read_run
from transferlab.tasks.detect.data import Split, load_detection
from transferlab.tasks.detect.models import DETECTORS
from transferlab.tasks.quantize import SCORING, Int8Check, calibration_sample, run_data, same_classes

CONFIDENT = 0.5  # the detections whose keeping ``agreement`` counts: what a user would draw


def int8_check(run_dir: str | Path, *, calibration: str | int, data: str | None, calibrate: bool) -> Int8Check:
    """DATA (``--data``, or the run's own --images/--annotations) read and split as the run's
    training read it: ``calibration`` of its training images calibrate, its held-out images are
    scored."""
    info = read_run(run_dir, model_kind=DETECTOR)
    name = info.model["detector"]
    if not DETECTORS[name].int8:
        raise RunError(f"ONNX Runtime crashes running an int8 {name} (measured: its RoI heads)",
                       "export it in fp32 (leave out --quantize), or train --detector fcos or retinanet")  # fmt: skip
    opts = info.extra.get("options", {})
    run_data(data, bool(opts.get("images") and opts.get("annotations")), "detect", "its images and boxes")
    read = load_detection(
        data, images=opts.get("images"), annotations=opts.get("annotations"), val_images=opts.get("val_images"),
        val_annotations=opts.get("val_annotations"), classes=opts.get("classes"),
        val_fraction=opts.get("val_fraction", 0.2), seed=opts.get("seed", 0),
    )  # fmt: skip
    same_classes(read.classes, info.class_names, read.description)
    chosen = read.train.subset(calibration_sample(calibration, len(read.train), "a detector")) if calibrate else None
    return Int8Check(
        calibration=None if chosen is None else lambda _: (_pixels(image) for image in chosen.images),
        calibration_images=0 if chosen is None else len(chosen),
        score=lambda fp32, int8: scores(fp32, int8, read.val, read.classes),
        measured_on=f"{len(read.val)} held-out images of {read.description}, at their own sizes",
        metric="mAP",
        side=int(info.model["img_size"]),
        batched=False,
        shape_inference=False,  # ONNX Runtime's stops on these graphs (their sizes are free)
        op_types=("Conv",),
    )


def _pixels(image: torch.Tensor) -> np.ndarray:
    """A uint8 3 x H x W image as the exported detector takes it: float32 in [0, 1]."""
    return image.float().div(255).contiguous().numpy()


def scores(fp32: Any, int8: Any, split: Split, classes: list[str]) -> dict[str, float]:
    """COCO mAP of both sessions on ``split``, and the share of fp32's confident detections (score
    at least ``CONFIDENT``) that int8 keeps: a confident detection of the same class at IoU 0.5."""
    name = fp32.get_inputs()[0].name
    found: list[list[dict[str, torch.Tensor]]] = [[], []]
    for image in track(split.images, SCORING, len(split)):
        for side, session in zip(found, (fp32, int8), strict=True):
            boxes, confidence, labels = session.run(None, {name: _pixels(image)})
            side.append({"boxes": torch.from_numpy(boxes).float(), "scores": torch.from_numpy(confidence).float(),
                         "labels": torch.from_numpy(labels).long()})  # fmt: skip
    targets = [split.target(i) for i in range(len(split))]
    fp32_map, int8_map = (metrics.compute("detection", predictions=p, targets=targets, classes=classes)["map"]
                          for p in found)  # fmt: skip
    kept = confident = 0
    for a, b in zip(*found, strict=True):
        a, b = ({k: v[d["scores"] >= CONFIDENT] for k, v in d.items()} for d in (a, b))
        confident += len(a["boxes"])
        if len(a["boxes"]) and len(b["boxes"]):
            same = (box_iou(a["boxes"], b["boxes"]) >= 0.5) & (a["labels"][:, None] == b["labels"][None, :])
            kept += int(same.any(1).sum())
    return {"fp32": fp32_map, "int8": int8_map, "agreement": kept / confident if confident else 1.0,
            "images": len(split)}  # fmt: skip
