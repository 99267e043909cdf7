"""``segment``: semantic segmentation by transfer from pretrained encoders.

from transferlab import segment
run = segment.train("membrane/", strategy="full", epochs=30)            # images/ + masks/ (or VOC)
table = segment.compare("membrane/", ["scratch", "frozen", "full"])
segment.evaluate(run.run_dir, "more/")                                   # mIoU, accuracy, Dice
segment.apply(run.run_dir, ["slice.png"], out="masks/")                  # index, colour and overlay PNGs
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from transferlab import robustness
from transferlab.data.images import collect_images, image_tensor
from transferlab.data.split import evaluation_source
from transferlab.devices import resolve_device
from transferlab.engine.performance import for_inference
from transferlab.engine.run import run
from transferlab.errors import UsageError
from transferlab.io import atomic_path, write_json
from transferlab.options.segment import STRATEGIES, SegmentOptions, check_side
from transferlab.progress import track
from transferlab.reports.comparison import StrategyStudy, compare_strategies
from transferlab.runs import folder_name
from transferlab.tasks.segment.data import load_segmentation, read_classes
from transferlab.tasks.segment.inference import load_segmenter, predict_logits, score
from transferlab.tasks.segment.quantization import int8_check
from transferlab.tasks.segment.recipe import SegmentRecipe, read_data
from transferlab.tasks.segment.report import SegmentResult, colour_mask, overlay, weak_classes

#: The training recipe (``registry.Task.recipe``: what ``lr-find`` sweeps and ``tune`` trains).
RECIPE = SegmentRecipe

__all__ = ["SegmentOptions", "SegmentResult", "apply", "compare", "evaluate", "exportable", "int8_check", "load_run",
           "load_segmenter", "train"]  # fmt: skip

#: The registry's loader of this task's runs (``registry.load_run``): (network, its spec).
load_run = load_segmenter


def exportable(run_dir: str | Path) -> tuple[torch.nn.Module, torch.Tensor, None]:
    """The network to export and an example input, at the run's training size (N x 3 x S x S in
    [0, 1] -> N x C x S x S logits): torch.export with free height and width did not finish here
    (minutes, then stopped), while a fixed size exports in seconds and matches to 1e-7."""
    net, spec = load_segmenter(run_dir)
    size = int(spec["img_size"])
    return net, torch.rand(2, 3, size, size), None


def train(
    data: Any = None,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    fabric: Any = None,
    name: str = "",
    **options: Any,
) -> SegmentResult:
    """Train a segmentation network on DATA (or ``images=``/``masks=`` folders); write the run,
    overlays, curves and ``report.html``. ``resume=RUN`` continues a stopped run exactly."""
    return run(SegmentRecipe, data, out=out, resume=resume, stop_after=stop_after, fabric=fabric, name=name, **options)


def compare(data: Any, strategies: list[str], *, out: str | Path | None = None, **options: Any) -> list[SegmentResult]:
    """Each strategy (scratch, frozen, full, gradual) on one split, budget and seed; one table."""
    note = "Same split, budget and seed for every row; scores on the held-out images at their own resolution, " \
           "void pixels excluded."  # fmt: skip
    study = StrategyStudy("segment", train, read_data, SegmentOptions, STRATEGIES, note, "overlays.png",
                          "{name}: image | truth | prediction")  # fmt: skip
    return compare_strategies(study, data, strategies, Path(out) if out else None, options)


def evaluate(
    run_dir: str | Path, data: Any = None, *, device: str = "auto", images: str | None = None,
    masks: str | None = None, classes: str | None = None, ignore_index: int | None = None,
    predict_size: int | None = None, corruptions: str | list[str] | None = None,
    severities: Sequence[int] = robustness.SEVERITIES, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """mIoU, pixel and class accuracy, Dice of a run on DATA's held-out part (its val/test split,
    else all of it) or on ``images``/``masks`` folders, each mask at its own resolution; the classes
    below 0.1 IoU listed with their share of the pixels; written to the run's evaluations.
    ``classes`` (a colour table for colour masks) must name the run's classes in its order;
    ``ignore_index`` is the data's void value (default: the run's); ``predict_size`` the shorter
    side images are predicted at (default: the run's). ``corruptions`` (``robustness.parse``) adds
    the mIoU under each corruption and severity of the images at their own resolution (key
    ``corruptions``), with ``robustness.png`` and ``report.html``."""
    source = evaluation_source(data, images, masks, "--masks")
    asked = robustness.Request.of(corruptions, severities, seed)
    check_side("predict_size", predict_size)
    dev = resolve_device(device)
    net, spec = load_segmenter(run_dir, dev)
    names, given = list(spec["classes"]), read_classes(classes)[0]
    if given and given != names:
        raise UsageError(f"--classes names {', '.join(given)}, the run {', '.join(names)}",
                         "give the run's classes in its order, or leave --classes out")  # fmt: skip
    ignore = int(spec["ignore_index"]) if ignore_index is None else ignore_index
    side = spec["predict_size"] if predict_size is None else predict_size
    read = load_segmentation(data, images=images, masks=masks, classes=classes or ",".join(names),
                             ignore_index=ignore, hold_out=False)  # fmt: skip
    split = read.val if len(read.val) else read.train  # DATA's own held-out part, else all of it
    performance = for_inference(dev, SegmentOptions.cpu_defaults)
    scores = score(net, split, names, ignore, side, performance, progress=True)
    scores = {**scores, "images": len(split), "data": read.description, "predict_size": side,
              "weak_classes": weak_classes(scores)}  # fmt: skip
    out_dir = Path(run_dir) / "evaluations" / folder_name(source)
    if asked is not None:

        def miou(change: Any) -> float:
            return score(net, robustness.corrupted_split(split, change), names, ignore, side, performance)["miou"]

        title = f"robustness of {Path(run_dir).name}"
        scores["corruptions"] = asked.run(miou, "miou", out_dir, title, clean=scores["miou"])
    write_json(out_dir / "segment.json", scores)
    return scores


def apply(
    run_dir: str | Path, inputs: list[str | Path], *, out: str | Path = "segmented", device: str = "auto"
) -> list[Path]:
    """For each image (any size): ``NAME_mask.png`` (class indices), ``NAME_colour.png`` and
    ``NAME_overlay.png``. Returns the written files."""
    dev = resolve_device(device)
    net, spec = load_segmenter(run_dir, dev)
    files = collect_images(inputs)  # none found is its refusal
    performance, out = for_inference(dev, SegmentOptions.cpu_defaults), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    colours, ignore, written = spec["colours"], int(spec["ignore_index"]), []
    for path in track(files, "segmenting", len(files)):
        image = image_tensor(path)
        predicted = predict_logits(net, image, spec["predict_size"], performance).argmax(0)
        index = predicted.numpy().astype(np.uint8 if len(colours) <= 256 else np.uint16)
        pictures = {"mask": index, "colour": colour_mask(predicted, colours, ignore),
                    "overlay": overlay(image, predicted, colours, ignore)}  # fmt: skip
        for kind, pixels in pictures.items():
            target = out / f"{Path(path).stem}_{kind}.png"
            with atomic_path(target) as tmp:
                Image.fromarray(pixels).save(tmp, format="PNG")
            written.append(target)
    return written
