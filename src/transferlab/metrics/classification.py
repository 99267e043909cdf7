"""Classification metrics from logits (torchmetrics): accuracy, top-5, per-class P/R/F1,
confusion matrix and the most-confused class pairs."""

from __future__ import annotations

from typing import Any

import torch

from transferlab.metrics import register


@register("validation")
def validation_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """What a training run watches after each epoch: cross-entropy, accuracy and macro F1."""
    import torch.nn.functional as F
    from torchmetrics.functional.classification import multiclass_f1_score

    logits, labels = logits.float(), labels.long().to(logits.device)
    return {
        "val_loss": F.cross_entropy(logits, labels).item(),
        "val_acc": (logits.argmax(1) == labels).float().mean().item(),
        "val_f1": multiclass_f1_score(logits, labels, num_classes=num_classes, average="macro").item(),
    }


@register("classification")
def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict[str, Any]:
    from torchmetrics.functional.classification import (
        multiclass_accuracy,
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    logits, labels = logits.float().cpu(), labels.long().cpu()
    k = len(classes)
    top5 = multiclass_accuracy(logits, labels, num_classes=k, top_k=min(5, k), average="micro").item()
    precision = multiclass_precision(logits, labels, num_classes=k, average=None)
    recall = multiclass_recall(logits, labels, num_classes=k, average=None)
    f1 = multiclass_f1_score(logits, labels, num_classes=k, average=None)
    confusion = multiclass_confusion_matrix(logits, labels, num_classes=k)
    support = torch.bincount(labels, minlength=k)
    off_diagonal = confusion.clone()
    off_diagonal.fill_diagonal_(0)
    pairs = []
    for flat in torch.argsort(off_diagonal.flatten(), descending=True)[:10].tolist():
        true, pred = divmod(flat, k)
        count = int(off_diagonal[true, pred])
        if count == 0:
            break
        pairs.append({"true": classes[true], "predicted": classes[pred], "count": count})
    return {
        "images": len(labels),
        "accuracy": (logits.argmax(1) == labels).float().mean().item(),
        "top5_accuracy": top5,
        "macro_f1": f1.mean().item(),
        "per_class": [
            {
                "class": c,
                "precision": precision[i].item(),
                "recall": recall[i].item(),
                "f1": f1[i].item(),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        ],
        "confusion_matrix": confusion.tolist(),
        "most_confused": pairs,
    }
