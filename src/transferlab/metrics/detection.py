"""Object detection metrics: COCO's definition through torchmetrics' ``MeanAveragePrecision``.

- **AP** of a class at IoU threshold t: the area under its precision-recall curve, sampled at 101
  recall points (COCO's interpolation), detections ranked by score over all held-out images, a
  detection true when it overlaps an unmatched true box of its class with IoU >= t;
- **mAP@[.5:.95]** (``map``): AP averaged over the classes and over t = 0.50, 0.55, ..., 0.95;
  **mAP@.5** and **mAP@.75** at one threshold; **recall** (``mar_100``): the recall at 100
  detections an image, averaged like mAP;
- true boxes marked difficult (VOC) are passed as COCO's *crowd*: a detection on one neither counts
  as true nor as false, and they are not among the boxes to find.

The backend is ``faster-coco-eval``: the same definition as pycocotools (it is a C++ port of its
evaluation that the torchmetrics maintainers support), several times faster on many small images,
and with wheels for every platform torch has.
"""

from __future__ import annotations

from typing import Any

import torch

from transferlab.metrics import register

BACKEND = "faster_coco_eval"


def average_precision(class_metrics: bool = True) -> Any:
    """A fresh ``MeanAveragePrecision`` (boxes ``x1 y1 x2 y2``; the PR curves kept)."""
    from torchmetrics.detection import MeanAveragePrecision

    return MeanAveragePrecision(box_format="xyxy", iou_type="bbox", class_metrics=class_metrics,
                                extended_summary=True, backend=BACKEND, sync_on_compute=False)  # fmt: skip


@register("detection")
def detection_metrics(
    predictions: list[dict[str, torch.Tensor]], targets: list[dict[str, torch.Tensor]], classes: list[str]
) -> dict[str, Any]:
    """The metrics above from per-image predictions (``boxes``, ``scores``, ``labels``) and truths
    (``boxes``, ``labels``, optional ``iscrowd``), with the mean precision-recall curve at IoU .5."""
    metric = average_precision()
    metric.update(predictions, targets)
    result = metric.compute()
    per_class = result["map_per_class"].reshape(-1).tolist()
    present = result["classes"].reshape(-1).tolist()
    ap_of = dict(zip(present, per_class))
    # precision: IoU thresholds x 101 recall points x classes x areas (all first) x max detections (100 last)
    precision = result["precision"][0, :, :, 0, -1]
    curve = torch.where(precision >= 0, precision, torch.nan).nanmean(1).nan_to_num(0.0)
    truths = torch.bincount(torch.cat([t["labels"][t.get("iscrowd", torch.zeros_like(t["labels"])) == 0]
                                       for t in targets] or [torch.zeros(0, dtype=torch.long)]),
                            minlength=len(classes))  # fmt: skip
    return {
        "map": float(result["map"]),
        "map_50": float(result["map_50"]),
        "map_75": float(result["map_75"]),
        "recall": float(result["mar_100"]),
        "per_class": [
            {"class": name, "ap": max(0.0, float(ap_of.get(i, -1.0))), "boxes": int(truths[i])}
            for i, name in enumerate(classes)
        ],
        "pr_curve": {"recall": torch.linspace(0, 1, 101).tolist(), "precision": curve.tolist()},
        "images": len(targets),
        "backend": BACKEND,
    }
