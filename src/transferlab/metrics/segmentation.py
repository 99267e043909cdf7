"""Semantic segmentation metrics from one confusion matrix over every held-out pixel (void pixels,
``ignore_index``, excluded everywhere). For class c with TP, FP, FN counted over all images:

- IoU_c = TP / (TP + FP + FN); **mIoU** is the mean over classes present in the truth or the
  prediction (a class absent from both has no IoU and is left out of the mean);
- **pixel accuracy** = sum_c TP_c / (labelled pixels);
- **class-average accuracy** = mean over classes present in the truth of TP_c / (TP_c + FN_c);
- Dice_c = 2 TP / (2 TP + FP + FN) (the per-class F1); **mean Dice** as mIoU.
"""

from __future__ import annotations

from typing import Any

import torch

from transferlab.metrics import register


def confusion(prediction: torch.Tensor, truth: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """num_classes x num_classes counts (rows: truth, columns: prediction) of the labelled pixels."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(
        prediction.reshape(-1).cpu(), truth.reshape(-1).cpu(), num_classes=num_classes, ignore_index=ignore_index
    )


@register("segmentation")
def segmentation_metrics(matrix: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    """The metrics above from a summed confusion matrix (:func:`confusion`)."""
    m = matrix.double()
    tp, truth, predicted = m.diag(), m.sum(1), m.sum(0)
    fp, fn = predicted - tp, truth - tp
    union = tp + fp + fn
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    dice = torch.where(union > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1), torch.full_like(tp, float("nan")))
    recall = torch.where(truth > 0, tp / truth.clamp(min=1), torch.full_like(tp, float("nan")))
    return {
        "miou": float(iou.nanmean()),
        "pixel_accuracy": float(tp.sum() / m.sum().clamp(min=1)),
        "class_accuracy": float(recall.nanmean()),
        "mean_dice": float(dice.nanmean()),
        "per_class": [
            {
                "class": name,
                "iou": float(iou[i]),
                "dice": float(dice[i]),
                "accuracy": float(recall[i]),
                "pixels": int(truth[i]),
            }
            for i, name in enumerate(classes)
        ],
        "confusion_matrix": matrix.long().tolist(),
        "pixels": int(m.sum()),
    }
