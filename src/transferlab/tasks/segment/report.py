"""What a segmentation run leaves to look at: ``evaluation.json`` (mIoU, accuracies, Dice, per
class), the loss and mIoU curves, a per-class IoU chart, the confusion matrix, image | truth |
prediction overlays of fixed held-out images, and ``report.html``; and colour masks for ``apply``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.reports import plots
from transferlab.reports.html import HtmlReport

#: Held-out images shown as overlays in the report.
OVERLAYS = 6


@dataclass
class SegmentResult:
    name: str
    run_dir: Path
    report: Path
    scores: dict[str, Any]  # the best epoch's held-out metrics
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        s = self.scores
        return {"strategy": self.name, "mIoU": s.get("miou"), "pixel accuracy": s.get("pixel_accuracy"),
                "class accuracy": s.get("class_accuracy"), "mean Dice": s.get("mean_dice"),
                "seconds": round(self.seconds, 1)}  # fmt: skip


def colour_mask(mask: torch.Tensor, colours: list, ignore: int) -> np.ndarray:
    """Class indices (H x W) -> an RGB image (void black)."""
    table = np.zeros((max(len(colours), 1) + 1, 3), dtype=np.uint8)
    table[: len(colours)] = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    index = mask.numpy().astype(np.int64)
    index = np.where((index == ignore) | (index >= len(colours)) | (index < 0), len(colours), index)
    return table[index]


def overlay(image: torch.Tensor, mask: torch.Tensor, colours: list, ignore: int, alpha: float = 0.5) -> np.ndarray:
    """The image (uint8 3 x H x W) with the colour mask blended over it."""
    pixels = image.permute(1, 2, 0).numpy().astype(np.float32)
    blended = (1 - alpha) * pixels + alpha * colour_mask(mask, colours, ignore)
    return blended.clip(0, 255).astype(np.uint8)


def write_report(recipe: Any, name: str, seconds: float) -> SegmentResult:
    """The held-out scores of the run's (best) weights, taken at their epoch, and every picture and
    the report; the best network is loaded once for the overlays."""
    from PIL import Image

    from transferlab.engine.session import read_metrics
    from transferlab.io import write_json
    from transferlab.tasks.segment import load_segmenter
    from transferlab.tasks.segment.recipe import predict_logits

    run_dir, data, opts, scores = recipe.run_dir, recipe.data, recipe.opts, recipe.best["scores"]
    net, _ = load_segmenter(run_dir, recipe.fabric.device)
    write_json(run_dir / "evaluation.json", scores)
    history = read_metrics(run_dir)
    scored = [r for r in history if not math.isnan(r.get("miou", math.nan))]  # the epochs scored
    plots.metric_curves({"held-out mIoU": ([r["epoch"] for r in scored], [r["miou"] for r in scored])},
                        run_dir / "miou.png", "held-out mIoU", "epoch")  # fmt: skip
    plots.loss_curves({"training loss": [r["loss"] for r in history]}, run_dir / "losses.png", "epoch", log=False)
    plots.bar_chart({c["class"]: c["iou"] for c in scores["per_class"]}, run_dir / "iou.png", "IoU")
    plots.confusion_matrix(scores["confusion_matrix"], data.classes, run_dir / "confusion.png")
    panels, captions = [], []
    for image, mask, stem in list(zip(data.val.images, data.val.masks, data.val.names))[:OVERLAYS]:
        predicted = predict_logits(net, image, opts.img_size, recipe.performance).argmax(0)
        panels += [Image.fromarray(image.permute(1, 2, 0).numpy()),
                   Image.fromarray(overlay(image, mask, data.colours, opts.ignore_index)),
                   Image.fromarray(overlay(image, predicted, data.colours, opts.ignore_index))]  # fmt: skip
        captions += [stem, "truth", "prediction"]
    gallery = plots.image_gallery(panels, captions, run_dir / "overlays.png", columns=3)
    report = HtmlReport(f"segment: {opts.strategy} {opts.decoder} on {data.description}")
    report.facts({"data": data.summary(), "encoder": f"{opts.backbone} ({recipe.weights_source})",
                  "decoder": opts.decoder, "strategy": opts.strategy, "best epoch": recipe.best["epoch"],
                  "crop": f"{opts.img_size} px, batch {opts.batch_size}, {recipe.epochs} epochs",
                  "loss": opts.loss, "seconds": round(seconds, 1)})  # fmt: skip
    report.heading("Held-out scores (void pixels excluded)").table([{
        "mIoU": scores["miou"], "pixel accuracy": scores["pixel_accuracy"],
        "class accuracy": scores["class_accuracy"], "mean Dice": scores["mean_dice"], "pixels": scores["pixels"],
    }]).table(scores["per_class"])  # fmt: skip
    report.heading("Image | truth | prediction").image(gallery, "overlays")
    report.heading("Per-class IoU").image(run_dir / "iou.png", "per-class IoU")
    report.heading("Confusion matrix (pixels)").image(run_dir / "confusion.png", "confusion")
    report.heading("Curves").image(run_dir / "miou.png", "mIoU").image(run_dir / "losses.png", "loss")
    path = report.save(run_dir / "report.html")
    return SegmentResult(name, run_dir, path, scores, seconds, history)
