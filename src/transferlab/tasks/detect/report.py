"""What a detection run leaves to look at: ``evaluation.json`` (mAP, AP per class, recall, the PR
curve), the loss and mAP curves, the precision-recall curve, held-out images with true (green) and
predicted boxes, and ``report.html``; and the box drawing ``apply`` and ``serve`` share."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from transferlab.engine.session import read_metrics
from transferlab.io import atomic_path, write_json
from transferlab.reports import plots
from transferlab.reports.comparison import StrategyResult
from transferlab.reports.html import HtmlReport
from transferlab.tasks.detect.inference import load_detector, predict
from transferlab.tasks.explain import report_maps

#: Held-out images drawn in the report.
SHOWN = 8
#: Predictions drawn in pictures (mAP counts lower ones too).
DRAWN_SCORE = 0.3
TRUTH_COLOUR = (40, 200, 80)


class DetectResult(StrategyResult):
    """What `detect train` returns: the run, its report and the best epoch's held-out scores."""

    columns: ClassVar[dict[str, str]] = {
        "mAP@[.5:.95]": "map",
        "mAP@.5": "map_50",
        "mAP@.75": "map_75",
        "recall": "recall",
    }


def colour_of(label: int) -> tuple[int, int, int]:
    """A distinct colour per class (matplotlib's tab10, cycled)."""
    palette = [(31, 119, 180), (255, 127, 14), (214, 39, 40), (148, 103, 189), (140, 86, 75),
               (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232)]  # fmt: skip
    return palette[label % len(palette)]


def draw(
    image: torch.Tensor, detections: dict[str, torch.Tensor], classes: list[str], min_score: float = DRAWN_SCORE,
    truth: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """The uint8 image with its detections above ``min_score`` drawn (class and score), and true
    boxes in green when given (torchvision's ``draw_bounding_boxes``)."""
    from torchvision.utils import draw_bounding_boxes

    width = max(2, round(max(image.shape[-2:]) / 250))
    if truth is not None and len(truth):
        image = draw_bounding_boxes(image, truth, colors=[TRUTH_COLOUR] * len(truth), width=width)
    keep = detections["scores"] >= min_score
    labels = detections["labels"][keep].tolist()
    if not labels:
        return image
    names = [f"{classes[c] if 0 <= c < len(classes) else c} {s:.2f}" for c, s in
             zip(labels, detections["scores"][keep].tolist())]  # fmt: skip
    colours = [colour_of(c) for c in labels]
    filled = {"fill_labels": True, "label_colors": "white"} if _fills_labels() else {}  # torchvision >= 0.20
    return draw_bounding_boxes(image, detections["boxes"][keep], names, colors=colours, width=width, font=_font(),
                               font_size=max(12, 6 * width), **filled)  # fmt: skip


@functools.cache
def _fills_labels() -> bool:
    import inspect

    from torchvision.utils import draw_bounding_boxes

    return "fill_labels" in inspect.signature(draw_bounding_boxes).parameters


@functools.cache
def _font() -> str:
    """A TrueType font for the labels (matplotlib's DejaVu Sans: installed with it, offline)."""
    from matplotlib import font_manager

    return font_manager.findfont("DejaVu Sans")


def grid(images: list[torch.Tensor], captions: list[str], path: Path, cell: tuple[int, int] = (480, 360),
         columns: int = 2) -> Path:  # fmt: skip
    """Drawn images, each fitted into a ``cell`` (width, height) with its caption, ``columns`` a row:
    large enough to read the boxes' labels (a matplotlib gallery shrinks them away)."""
    from PIL import ImageDraw, ImageFont

    width, height, text = cell[0], cell[1], 22
    rows = max(1, -(-len(images) // columns))
    canvas = Image.new("RGB", (columns * width, rows * (height + text)), "white")
    pen, font = ImageDraw.Draw(canvas), ImageFont.truetype(_font(), 14)
    for i, (image, caption) in enumerate(zip(images, captions)):
        picture = Image.fromarray(image.permute(1, 2, 0).numpy())
        picture.thumbnail((width - 8, height - 8))
        x, y = (i % columns) * width, (i // columns) * (height + text)
        canvas.paste(picture, (x + (width - picture.width) // 2, y + (height - picture.height) // 2))
        pen.text((x + width // 2, y + height + 2), caption, fill="black", font=font, anchor="ma")
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def write_report(recipe: Any, name: str, seconds: float) -> DetectResult:
    """The held-out scores of the best epoch with every picture and the report."""
    run_dir, data, opts, scores = recipe.run_dir, recipe.data, recipe.opts, recipe.best["scores"]
    write_json(run_dir / "evaluation.json", scores)
    history = read_metrics(run_dir)
    scored = [r for r in history if not math.isnan(r.get("map", math.nan))]
    plots.metric_curves({name: ([r["epoch"] for r in scored], [r[key] for r in scored])
                         for name, key in (("mAP@[.5:.95]", "map"), ("mAP@.5", "map_50"))},
                        run_dir / "map.png", "held-out mAP", "epoch")  # fmt: skip
    plots.loss_curves({"training loss": [r["loss"] for r in history]}, run_dir / "losses.png", "epoch", log=False)
    curve = scores["pr_curve"]
    plots.metric_curves({"mean over classes, IoU .5": (curve["recall"], curve["precision"])},
                        run_dir / "pr_curve.png", "precision", "recall")  # fmt: skip
    predictions = recipe.best_extra
    if predictions is None:  # a resumed run: the best weights are the run's
        net, _ = load_detector(run_dir, recipe.fabric.device)
        predictions = predict(net, data.val.images[:SHOWN])
    shown = [draw(image, p, data.classes, truth=boxes)
             for image, p, boxes in zip(data.val.images[:SHOWN], predictions, data.val.boxes)]  # fmt: skip
    gallery = grid(shown, data.val.names[:SHOWN], run_dir / "detections.png")
    photos = [Image.fromarray(image.permute(1, 2, 0).numpy()) for image in data.val.images[:SHOWN]]
    maps = report_maps(run_dir, photos)
    looks = plots.image_gallery([m.picture for m in maps], list(data.val.names[:SHOWN]), run_dir / "maps.png",
                                columns=max(1, min(4, len(maps))))  # fmt: skip
    report = HtmlReport(f"detect: {opts.strategy} {opts.detector} on {data.description}")
    report.facts({"data": data.summary(), "backbone": f"{opts.backbone} ({recipe.weights_source})",
                  "detector": opts.detector, "strategy": opts.strategy, "best epoch": recipe.best["epoch"],
                  "training": f"{opts.img_size} px, batch {opts.batch_size}, {recipe.epochs} epochs",
                  "metric": f"COCO mAP ({scores['backend']})", "seconds": round(seconds, 1)})  # fmt: skip
    report.heading("Held-out scores").table([{"mAP@[.5:.95]": scores["map"], "mAP@.5": scores["map_50"],
                                              "mAP@.75": scores["map_75"], "recall": scores["recall"],
                                              "images": scores["images"]}]).table(scores["per_class"])  # fmt: skip
    report.heading(f"Held-out images: truth in green, predictions above {DRAWN_SCORE}").image(gallery, "detections")
    report.heading(f"Where it looks ({maps[0].method if maps else 'eigencam'}, inside each box found)").image(
        looks, "maps"
    )
    report.heading("Precision-recall (IoU .5)").image(run_dir / "pr_curve.png", "precision-recall")
    report.heading("Curves").image(run_dir / "map.png", "mAP").image(run_dir / "losses.png", "loss")
    path = report.save(run_dir / "report.html")
    return DetectResult(name, run_dir, path, scores, seconds, history)
