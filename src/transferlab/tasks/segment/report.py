"""What a segmentation run leaves to look at: ``evaluation.json`` (mIoU, accuracies, Dice, per
class), the loss and mIoU curves, a per-class IoU chart, the confusion matrix, image | truth |
prediction overlays of fixed held-out images, and ``report.html``; and colour masks for ``apply``."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from transferlab.engine.session import read_metrics
from transferlab.io import write_json
from transferlab.reports import plots
from transferlab.reports.comparison import StrategyResult
from transferlab.reports.html import HtmlReport
from transferlab.tasks.explain import report_maps
from transferlab.tasks.segment.inference import load_segmenter, predict_logits

#: Held-out images shown as overlays in the report.
OVERLAYS = 6
#: A class below this held-out IoU is named as one the model is blind to.
WEAK_IOU = 0.1


class SegmentResult(StrategyResult):
    """What `segment train` returns: the run, its report and the best epoch's held-out scores."""

    columns: ClassVar[dict[str, str]] = {
        "mIoU": "miou",
        "pixel accuracy": "pixel_accuracy",
        "class accuracy": "class_accuracy",
        "mean Dice": "mean_dice",
    }


def colour_mask(mask: torch.Tensor, colours: list, ignore: int) -> np.ndarray:
    """Class indices (H x W) -> an RGB image (void black)."""
    table = np.zeros((max(len(colours), 1) + 1, 3), dtype=np.uint8)
    table[: len(colours)] = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    index = mask.numpy().astype(np.int64)
    index = np.where((index == ignore) | (index >= len(colours)) | (index < 0), len(colours), index)
    return table[index]


def overlay(image: torch.Tensor, mask: torch.Tensor, colours: list, ignore: int, alpha: float = 0.5) -> np.ndarray:
    """The image (uint8 3 x H x W) with the colour mask blended over it; void pixels left as they are."""
    pixels = image.permute(1, 2, 0).numpy().astype(np.float32)
    weight = alpha * (mask.numpy() != ignore)[..., None]
    blended = (1 - weight) * pixels + weight * colour_mask(mask, colours, ignore)
    return blended.clip(0, 255).astype(np.uint8)


def weak_classes(scores: dict[str, Any], below: float = WEAK_IOU) -> list[dict[str, Any]]:
    """The classes scored below ``below`` IoU, with their share of the labelled pixels, rarest first."""
    total = max(1, sum(c["pixels"] for c in scores["per_class"]))
    weak = [{"class": c["class"], "iou": c["iou"], "share": c["pixels"] / total}
            for c in scores["per_class"] if not math.isnan(c["iou"]) and c["iou"] < below]  # fmt: skip
    return sorted(weak, key=lambda c: c["share"])


def weak_line(scores: dict[str, Any], below: float = WEAK_IOU) -> str:
    """One line naming where the model is blind, e.g. "below 0.1 IoU: pole 0.00 (0.9% of the pixels)"."""
    weak = weak_classes(scores, below)
    if not weak:
        return f"every class at {below} IoU or more"
    listed = ", ".join(f"{c['class']} {c['iou']:.2f} ({100 * c['share']:.1f}%)" for c in weak)
    return f"{len(weak)} class(es) below {below} IoU (their share of the pixels): {listed}"


def overlay_picks(masks: list[torch.Tensor], classes: int, ignore: int, count: int = OVERLAYS) -> list[int]:
    """Which held-out images to draw: for each of the rarest classes (up to half of ``count``) the
    image holding most of its pixels, then images spread evenly over the set (not the first few
    in file order, which on frames cut from a video look alike)."""
    if len(masks) <= count:
        return list(range(len(masks)))
    counts = torch.stack([torch.bincount(m[m != ignore].flatten(), minlength=classes)[:classes] for m in masks])
    present = [c for c in counts.sum(0).argsort().tolist() if counts[:, c].sum() > 0]
    picks: list[int] = []
    for c in present[: count // 2]:
        for i in counts[:, c].argsort(descending=True).tolist():
            if counts[i, c] == 0:
                break
            if i not in picks:
                picks.append(i)
                break
    rest = [i for i in range(len(masks)) if i not in picks]
    wanted = count - len(picks)
    picks += [rest[round(k * (len(rest) - 1) / max(1, wanted - 1))] for k in range(wanted)]
    return sorted(picks)


def write_report(recipe: Any, name: str, seconds: float) -> SegmentResult:
    """The held-out scores of the run's (best) weights, taken at their epoch, and every picture and
    the report; the best network is loaded once for the overlays."""
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
    val = data.val.subset(overlay_picks(data.val.masks, len(data.classes), opts.ignore_index))
    photos = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in val.images]
    maps = report_maps(run_dir, photos)
    for image, photo, mask, stem, found in zip(val.images, photos, val.masks, val.names, maps):
        predicted = predict_logits(net, image, opts.prediction_side(), recipe.performance).argmax(0)
        panels += [photo, Image.fromarray(overlay(image, mask, data.colours, opts.ignore_index)),
                   Image.fromarray(overlay(image, predicted, data.colours, opts.ignore_index)), found.picture,
                   found.uncertainty]  # fmt: skip
        captions += [stem, "truth", "prediction", f"{found.method}: {data.classes[found.class_index]}", "uncertainty"]
    gallery = plots.image_gallery(panels, captions, run_dir / "overlays.png", columns=5)
    report = HtmlReport(f"segment: {opts.strategy} {opts.decoder} on {data.description}")
    report.facts({"data": data.summary(), "encoder": f"{opts.backbone} ({recipe.weights_source})",
                  "decoder": opts.decoder, "strategy": opts.strategy, "best epoch": recipe.best["epoch"],
                  "crop": f"{opts.img_size} px, batch {opts.batch_size}, {recipe.epochs} epochs",
                  "predicted at": f"{opts.prediction_side()} px (shorter side)",
                  "loss": opts.loss, "seconds": round(seconds, 1)})  # fmt: skip
    report.heading("Held-out scores (void pixels excluded)").table([{
        "mIoU": scores["miou"], "pixel accuracy": scores["pixel_accuracy"],
        "class accuracy": scores["class_accuracy"], "mean Dice": scores["mean_dice"], "pixels": scores["pixels"],
    }]).text(weak_line(scores)).table(scores["per_class"])  # fmt: skip
    report.heading("Image | truth | prediction | where it looks | uncertainty").text(
        "where it looks: the map of the class covering most of the predicted image after the first; uncertainty: "
        "the entropy of the class probabilities per pixel (bright: unsure)."
    ).image(gallery, "overlays")
    report.heading("Per-class IoU").image(run_dir / "iou.png", "per-class IoU")
    report.heading("Confusion matrix (pixels)").image(run_dir / "confusion.png", "confusion")
    report.heading("Curves").image(run_dir / "miou.png", "mIoU").image(run_dir / "losses.png", "loss")
    path = report.save(run_dir / "report.html")
    return SegmentResult(name, run_dir, path, scores, seconds, history)
