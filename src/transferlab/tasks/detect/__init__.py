"""``detect``: object detection by transfer from pretrained backbones.

from transferlab import detect
run = detect.train("kangaroo/", strategy="full")                    # images/ + annotations/ (VOC, COCO, YOLO)
table = detect.compare("kangaroo/", ["scratch", "frozen", "full"])
detect.evaluate(run.run_dir, "more/")                                # mAP@[.5:.95], mAP@.5, AP per class
detect.apply(run.run_dir, ["photo.jpg"], out="boxes/")               # drawn images + COCO results JSON
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from transferlab import robustness
from transferlab.data.images import collect_images, image_tensor
from transferlab.data.split import evaluation_source
from transferlab.devices import resolve_device
from transferlab.engine.run import run
from transferlab.errors import UsageError
from transferlab.io import atomic_path, write_json
from transferlab.options.detect import STRATEGIES, DetectOptions
from transferlab.progress import track
from transferlab.reports.comparison import StrategyStudy, compare_strategies
from transferlab.runs import folder_name
from transferlab.tasks.detect.data import load_detection
from transferlab.tasks.detect.inference import load_detector, predict, score
from transferlab.tasks.detect.models import OneImageDetector
from transferlab.tasks.detect.quantization import int8_check
from transferlab.tasks.detect.recipe import DetectRecipe, read_data
from transferlab.tasks.detect.report import DetectResult, draw

#: The training recipe (``registry.Task.recipe``: what ``lr-find`` sweeps and ``tune`` trains).
RECIPE = DetectRecipe

__all__ = [
    "DetectOptions",
    "DetectResult",
    "OneImageDetector",
    "apply",
    "compare",
    "evaluate",
    "exportable",
    "int8_check",
    "load_detector",
    "load_run",
    "train",
]

#: The registry's loader of this task's runs (``registry.load_run``): (network, its spec).
load_run = load_detector
#: The ONNX graph's names: one image of any size in, the boxes kept after non-maximum suppression out.
ONNX_NAMES = {"input_names": ["image"], "output_names": ["boxes", "scores", "labels"],
              "dynamic_axes": {"image": [1, 2], "boxes": [0], "scores": [0], "labels": [0]}}  # fmt: skip


def exportable(run_dir: str | Path) -> tuple[torch.nn.Module, torch.Tensor, dict[str, Any]]:
    """The detector to export (one 3 x H x W image in [0, 1] of any size -> boxes K x 4 in its
    pixels, scores K, labels K from 0; resizing and non-maximum suppression inside), an example
    image, and the graph's names."""
    net, spec = load_detector(run_dir)
    size = int(spec["img_size"])
    return OneImageDetector(net).eval(), torch.rand(3, size, size * 3 // 4), ONNX_NAMES


def train(
    data: Any = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    fabric: Any = None,
    name: str = "",
    **options: Any,
) -> DetectResult:
    """Train a detector on DATA (or ``images=``/``annotations=``); write the run, drawn held-out
    images, curves and ``report.html``. ``resume=RUN`` continues a stopped run exactly."""
    return run(DetectRecipe, data, out=out, resume=resume, stop_after=stop_after, fabric=fabric, name=name, **options)


def compare(data: Any, strategies: list[str], *, out: str | Path | None = None, **options: Any) -> list[DetectResult]:
    """Each strategy (scratch, frozen, full) on one split, budget and seed; one table."""
    study = StrategyStudy("detect", train, read_data, DetectOptions, STRATEGIES,
                          "Same split, budget and seed for every row; COCO mAP on the held-out images (difficult "
                          "boxes ignored).", "detections.png", "{name}: held-out detections")  # fmt: skip
    return compare_strategies(study, data, strategies, Path(out) if out else None, options)


def evaluate(
    run_dir: str | Path, data: Any = None, *, device: str = "auto", images: str | None = None,
    annotations: str | None = None, corruptions: str | list[str] | None = None,
    severities: Sequence[int] = robustness.SEVERITIES, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """COCO mAP of a run on DATA's held-out part (its val/test split, else all of it) or on
    ``images``/``annotations`` (the layouts ``train`` reads); written to the run's evaluations.
    ``corruptions`` (``robustness.parse``) adds mAP@.5 under each corruption and severity of the
    images at their own resolution (key ``corruptions``), with ``robustness.png`` and ``report.html``."""
    source = evaluation_source(data, images, annotations, "--annotations")
    asked = robustness.Request.of(corruptions, severities, seed)
    net, spec = load_detector(run_dir, resolve_device(device))
    read = load_detection(data, images=images, annotations=annotations, classes=",".join(spec["classes"]),
                          hold_out=False)  # fmt: skip
    split = read.val if len(read.val) else read.train  # DATA's own held-out part, else all of it
    scores, _ = score(net, split, spec["classes"], progress=True)
    scores = {**scores, "data": read.description}
    out_dir = Path(run_dir) / "evaluations" / folder_name(source)
    if asked is not None:

        def map_50(change: Any) -> float:
            return score(net, robustness.corrupted_split(split, change), spec["classes"])[0]["map_50"]

        title = f"robustness of {Path(run_dir).name}"
        scores["corruptions"] = asked.run(map_50, "map_50", out_dir, title, clean=scores["map_50"])
    write_json(out_dir / "detect.json", scores)
    return scores


def apply(
    run_dir: str | Path, inputs: list[str | Path], *, out: str | Path = "detected", device: str = "auto",
    score_threshold: float = 0.3, batch_size: int = 8,
) -> list[Path]:  # fmt: skip
    """For each image (any size) ``NAME_boxes.jpg`` with its detections drawn, and one
    ``detections.json`` in COCO's results format (``image_id`` is the file name; boxes ``x, y, w, h``
    in the image's own pixels). Returns the written files."""
    if not 0 <= score_threshold < 1:
        raise UsageError(f"--score-threshold {score_threshold} is not in [0, 1)", "e.g. 0.3")
    net, spec = load_detector(run_dir, resolve_device(device))
    files = collect_images(inputs)  # none found is its refusal
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    written = []
    for start in track(range(0, len(files), batch_size), "detecting", -(-len(files) // batch_size)):
        paths = files[start : start + batch_size]
        images = [image_tensor(p) for p in paths]
        for path, image, found in zip(paths, images, predict(net, images, batch_size)):
            keep = found["scores"] >= score_threshold
            for box, s, c in zip(found["boxes"][keep].tolist(), found["scores"][keep].tolist(),
                                 found["labels"][keep].tolist()):  # fmt: skip
                results.append({"image_id": Path(path).name, "category_id": c, "category": spec["classes"][c],
                                "bbox": [round(box[0], 2), round(box[1], 2), round(box[2] - box[0], 2),
                                         round(box[3] - box[1], 2)], "score": round(s, 4)})  # fmt: skip
            target = out / f"{Path(path).stem}_boxes.jpg"
            with atomic_path(target) as tmp:
                _save_jpeg(draw(image, found, spec["classes"], score_threshold), tmp)
            written.append(target)
    write_json(out / "detections.json", results)
    return [*written, out / "detections.json"]


def _save_jpeg(image: torch.Tensor, path: Path) -> None:

    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, format="JPEG", quality=92)
