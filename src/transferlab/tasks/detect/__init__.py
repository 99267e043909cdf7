"""``detect``: object detection by transfer from pretrained backbones.

from transferlab import detect
run = detect.train("kangaroo/", strategy="full")                    # images/ + annotations/ (VOC, COCO, YOLO)
table = detect.compare("kangaroo/", ["scratch", "frozen", "full"])
detect.evaluate(run.run_dir, "more/")                                # mAP@[.5:.95], mAP@.5, AP per class
detect.apply(run.run_dir, ["photo.jpg"], out="boxes/")               # drawn images + COCO results JSON
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from transferlab.errors import RunError, UsageError
from transferlab.options.detect import STRATEGIES, DetectOptions
from transferlab.runs import folder_name
from transferlab.tasks.detect.report import DetectResult

__all__ = ["DetectOptions", "DetectResult", "apply", "compare", "evaluate", "load_detector", "train"]


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
    from transferlab.engine.run import run
    from transferlab.tasks.detect.recipe import DetectRecipe

    return run(DetectRecipe, data, out=out, resume=resume, stop_after=stop_after, fabric=fabric, name=name, **options)


def compare(data: Any, strategies: list[str], *, out: str | Path | None = None, **options: Any) -> list[DetectResult]:
    """Each strategy (scratch, frozen, full) on one split, budget and seed; one table."""
    from transferlab.reports.comparison import StrategyStudy, compare_strategies
    from transferlab.tasks.detect.recipe import read_data

    study = StrategyStudy("detect", train, read_data, DetectOptions, STRATEGIES,
                          "Same split, budget and seed for every row; COCO mAP on the held-out images (difficult "
                          "boxes ignored).", "detections.png", "{name}: held-out detections")  # fmt: skip
    return compare_strategies(study, data, strategies, Path(out) if out else None, options)


def load_detector(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of a detect run and its spec (with ``classes``); other runs are refused."""
    from safetensors.torch import load_file

    from transferlab.runs import DETECTOR, read_run
    from transferlab.tasks.detect.models import build_detector

    run = read_run(run_dir, model_kind=DETECTOR)
    spec = {**run.model, "classes": run.class_names}
    try:
        net = build_detector(spec["detector"], f"{spec['backbone']}:random", int(spec["num_classes"]),
                             int(spec["img_size"]), int(spec["width"]), False, spec.get("init", "imagenet"),
                             float(spec.get("score_threshold", 0.05)))  # fmt: skip
        net.load_state_dict(load_file(str(run.weights_path)))
    except (KeyError, RuntimeError) as exc:
        raise RunError(f"the weights of {run_dir} do not fit its network ({str(exc).splitlines()[0][:100]})",
                       "retrain it with `transferlab detect train`") from None  # fmt: skip
    return net.to(device).eval(), spec


def evaluate(run_dir: str | Path, data: Any, *, device: str = "auto", **where: Any) -> dict[str, Any]:
    """COCO mAP of a run on DATA's held-out part (its val/test split, else all of it); written to
    the run's evaluations."""
    from transferlab.devices import resolve_device
    from transferlab.io import write_json
    from transferlab.tasks.detect.data import load_detection
    from transferlab.tasks.detect.recipe import score

    net, spec = load_detector(run_dir, resolve_device(device))
    read = load_detection(data, classes=",".join(spec["classes"]), hold_out=False, **where)
    split = read.val if len(read.val) else read.train  # DATA's own held-out part, else all of it
    scores, _ = score(net, split, spec["classes"], progress=True)
    scores = {**scores, "data": read.description}
    write_json(Path(run_dir) / "evaluations" / folder_name(Path(str(data)).name) / "detect.json", scores)
    return scores


def apply(
    run_dir: str | Path, inputs: list[str | Path], *, out: str | Path = "detected", device: str = "auto",
    score_threshold: float = 0.3, batch_size: int = 8,
) -> list[Path]:  # fmt: skip
    """For each image (any size) ``NAME_boxes.jpg`` with its detections drawn, and one
    ``detections.json`` in COCO's results format (``image_id`` is the file name; boxes ``x, y, w, h``
    in the image's own pixels). Returns the written files."""
    from transferlab.data.images import collect_images, image_tensor
    from transferlab.devices import resolve_device
    from transferlab.io import atomic_path, write_json
    from transferlab.progress import track
    from transferlab.tasks.detect.recipe import predict
    from transferlab.tasks.detect.report import draw

    if not 0 <= score_threshold < 1:
        raise UsageError(f"--score-threshold {score_threshold} is not in [0, 1)", "e.g. 0.3")
    net, spec = load_detector(run_dir, resolve_device(device))
    files = collect_images(inputs)
    if not files:
        raise UsageError("no images among the inputs", "give image files or folders of them")
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
    from PIL import Image

    Image.fromarray(image.permute(1, 2, 0).numpy()).save(path, format="JPEG", quality=92)
