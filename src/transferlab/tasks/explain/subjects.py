"""What ``explain`` can explain, one record per run kind: how the model is loaded, how a whole
image is fed to it, and which output a map explains (the targets)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from transferlab import backbones, registry
from transferlab.errors import UsageError
from transferlab.pixels import whole_image_size
from transferlab.runs import CLASSIFIER, DETECTOR, SEGMENTER, read_run
from transferlab.tasks.explain.cam import Layer, find_layer

#: The map's cells a side images are explained at: 14 (448 px on a stride-32 network), or fewer
#: where that is more than UPSCALE times the training side. Measured by the pointing game
#: (BENCHMARKS.md, "explain"): on 163 kangaroo photos (ImageNet Lite0 trained at 224, "wallaby") the
#: peak fell in a kangaroo's box for 64% of them at 4 cells (128 px), 92% at 7, 96% at 10 and 100%
#: at 14 (2x); on small CIFAR-10 objects pasted on 96 px pictures (Lite0 fine-tuned at 96, 3 seeds)
#: for 7% at the training size, 48% at 2x, 58% at 3x and 37% at 448 px (4.7x: objects far larger
#: than the network learnt them). The image centre scores 75% and 25%.
MIN_CELLS = 14
UPSCALE = 3
#: The pictures of a run's report take 7 (224 px): a thumbnail's worth, at a quarter of the time.
REPORT_CELLS = 7


@dataclass
class Subject:
    """A model to explain. ``prepare`` turns a whole image into its input (3 x H' x W', the aspect
    kept); ``targets`` picks, from the model's outputs on a batch, the class each map explains (the
    one asked for, per image, else the prediction): (pytorch-grad-cam targets, class indices, scores)."""

    model: nn.Module
    class_names: list[str]
    description: str
    layer: Layer
    prepare: Callable[[Image.Image], torch.Tensor]
    targets: Callable[[torch.Tensor, list[int | None]], tuple[list[Any], list[int], list[float]]]
    uncertainty: Callable[[torch.Tensor], torch.Tensor] | None = None  # outputs -> N x H' x W' in [0, 1]
    #: How the model's outputs are read (a detector's are lists of boxes, not a tensor).
    forward: Callable[[torch.Tensor], Any] | None = None
    #: Detectors: (map at the input's size, one image's detections, input size) -> (the map within
    #: each box, the boxes explained: label, score, box in the input's pixels).
    boxes: Callable[[np.ndarray, Any], tuple[np.ndarray, list[dict[str, Any]]]] | None = None
    methods: tuple[str, ...] | None = None  # the methods it takes (None: all)

    def outputs(self, x: torch.Tensor) -> Any:
        return self.forward(x) if self.forward else self.model(x).float()


def _pixels(image: Image.Image, height: int, width: int) -> torch.Tensor:
    """A whole image resized to ``height`` x ``width``: float 3 x H x W in [0, 1]."""
    pixels = np.asarray(image.resize((width, height), Image.BICUBIC), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)


def _side(
    model: nn.Module, trained_side: int, size: int | None, normalise: Callable, cells: int = MIN_CELLS
) -> tuple[int, Layer]:
    """The shorter side images are explained at (``size``, else the training side grown until the
    map has ``cells`` cells a side, up to :data:`UPSCALE` times it) and the layer read there, found
    on one small probe (64 px at least: a stride-32 map is 2 x 2 there, so the same layer is found
    as at any larger size)."""
    probe = max(trained_side, 64) if size is None else size
    layer = find_layer(model, normalise(torch.zeros(1, 3, probe, probe)))
    return size or max(trained_side, min(cells * layer.stride, UPSCALE * trained_side)), layer


def _fits_any_size(model: nn.Module, side: int) -> bool:
    """Whether the network takes other sizes than its training square (a pooled CNN does; a
    network with a flattening layer, e.g. LeNet, does not)."""
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, side, side + 32))
        return True
    except (RuntimeError, AssertionError, ValueError):  # timm asserts a ViT's input size
        return False


def classifier(
    run: Path | None, model_name: str | None, weights: Path | None, size: int | None, cells: int = MIN_CELLS
) -> Subject:
    """A classify run, or an ImageNet model by name (``predict``'s loader)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from transferlab.tasks.predict import load_classifier

    loaded = load_classifier(model_name, run, weights)
    model, config = loaded.model.eval(), loaded.data_config
    normalise = backbones.Normalize(config["mean"], config["std"])
    trained = int(config["input_size"][-1])
    flexible = _fits_any_size(model, trained)
    if flexible:
        side, layer = _side(model, trained, size, normalise, cells)
    else:  # one input size only (a flattening layer): explained at it, --size or not
        side, layer = trained, find_layer(model, normalise(torch.zeros(1, 3, trained, trained)))

    def prepare(image: Image.Image) -> torch.Tensor:
        # the whole image, never a centre crop: resized with its aspect kept (squashed to the
        # training square only for networks that take no other size)
        h, w = whole_image_size(image.height, image.width, side, layer.stride) if flexible else (side, side)
        return normalise(_pixels(image, h, w)[None])[0]

    def targets(outputs: torch.Tensor, wanted: list[int | None]) -> tuple[list[Any], list[int], list[float]]:
        probs = outputs.softmax(-1)
        chosen = [w if w is not None else int(i) for w, i in zip(wanted, probs.argmax(-1))]
        scores = [float(probs[n, c]) for n, c in enumerate(chosen)]
        return [ClassifierOutputTarget(c) for c in chosen], chosen, scores

    return Subject(model, loaded.class_names, loaded.description, layer, prepare, targets)


def segmenter(run: Path, size: int | None, cells: int = MIN_CELLS) -> Subject:
    """A segment run: maps of one class over the whole image, and the per-pixel entropy."""
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    net, spec = registry.load_run(SEGMENTER, run)
    names = list(spec["classes"])
    side, layer = _side(net, int(spec["predict_size"]), size, lambda x: x, cells)

    def prepare(image: Image.Image) -> torch.Tensor:
        return _pixels(image, *whole_image_size(image.height, image.width, side))

    def targets(outputs: torch.Tensor, wanted: list[int | None]) -> tuple[list[Any], list[int], list[float]]:
        probs, found, chosen, scores = outputs.softmax(1), [], [], []
        for n, predicted in enumerate(outputs.argmax(1)):
            counts = torch.bincount(predicted.flatten(), minlength=len(names))
            # by default the class covering most pixels after the first (the background, mostly)
            ranked = [int(c) for c in counts.argsort(descending=True) if counts[c] > 0]
            label = wanted[n] if wanted[n] is not None else next((c for c in ranked if c != 0), ranked[0])
            mask = (predicted == label).float()
            mask = mask if mask.sum() > 0 else torch.ones_like(mask)
            # the summed logits of the class over the pixels predicted as it (all where none is)
            found.append(SemanticSegmentationTarget(label, mask.numpy()))
            chosen.append(label)
            scores.append(float((probs[n, label] * mask).sum() / mask.sum()))
        return found, chosen, scores

    def uncertainty(outputs: torch.Tensor) -> torch.Tensor:
        # the entropy of the class probabilities, over its maximum log(C): 0 sure, 1 no idea
        logp = F.log_softmax(outputs, 1)
        return -(logp.exp() * logp).sum(1) / np.log(max(2, outputs.shape[1]))

    return Subject(net, names, f"segment run {run}", layer, prepare, targets, uncertainty)


class _ImagesAsList(nn.Module):
    """A detector (which takes a list of images) called with one N x 3 x H x W tensor."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> Any:
        return self.net(list(x))


#: Detections below this score are not explained (``detect apply``'s default threshold).
BOX_SCORE = 0.3


def detector(run: Path, size: int | None, cells: int = MIN_CELLS) -> Subject:
    """A detect run: EigenCAM of the encoder's deepest level (class-agnostic and without gradients:
    a detector's outputs are boxes, not one score to differentiate), then renormalised inside each
    detected box (as pytorch-grad-cam's tutorial does for detectors), so every box shows where in
    it the features respond."""
    net, spec = registry.load_run(DETECTOR, run)
    names, side = list(spec["classes"]), size or int(spec["img_size"])
    wrapped = _ImagesAsList(net).eval()
    layer = find_layer(wrapped, torch.zeros(1, 3, side, side), within=net.encoder)

    def prepare(image: Image.Image) -> torch.Tensor:
        # the longer side at the detector's evaluation size, as its own transform would resize it
        scale = side / max(image.height, image.width)
        return _pixels(image, max(32, round(image.height * scale)), max(32, round(image.width * scale)))

    def targets(outputs: Any, wanted: list[int | None]) -> tuple[list[Any], list[int], list[float]]:
        chosen, scores = [], []
        for found, want in zip(outputs, wanted):
            keep = found["scores"] >= BOX_SCORE if want is None else found["labels"] == want
            best = int(found["scores"][keep].argmax()) if keep.any() else None
            label = int(found["labels"][keep][best]) if best is not None else (want or 0)
            chosen.append(label)
            scores.append(float(found["scores"][keep][best]) if best is not None else 0.0)
        return [_NoTarget()] * len(outputs), chosen, scores

    def boxes(heat: np.ndarray, found: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
        within, listed = np.zeros_like(heat), []
        for box, score, label in zip(found["boxes"].tolist(), found["scores"].tolist(), found["labels"].tolist()):
            if score < BOX_SCORE:
                continue
            x1, y1, x2, y2 = (round(v) for v in box)
            inside = (slice(max(0, y1), max(y1 + 1, y2)), slice(max(0, x1), max(x1 + 1, x2)))
            part = heat[inside]
            if part.size:
                within[inside] = (part - part.min()) / max(part.max() - part.min(), 1e-6)
            listed.append({"label": names[label], "index": label, "score": score, "box": box})
        return (within, listed) if listed else (heat, listed)  # nothing found: the whole image's map

    return Subject(wrapped, names, f"detect run {run}", layer, prepare, targets, forward=wrapped, boxes=boxes,
                   methods=("eigencam",))  # fmt: skip


class _NoTarget:
    """EigenCAM needs no target; pytorch-grad-cam still takes one per image."""

    def __call__(self, output: Any) -> torch.Tensor:
        return torch.zeros(())


#: Run kind -> how a run of it is explained.
SUBJECTS: dict[str, Callable[..., Subject]] = {  # (run, size, cells) -> Subject
    CLASSIFIER: lambda run, size, cells=MIN_CELLS: classifier(run, None, None, size, cells),
    SEGMENTER: segmenter,
    DETECTOR: detector,
}


def load_subject(
    run: Path | None, model_name: str | None, weights: Path | None, size: int | None, cells: int = MIN_CELLS
) -> Subject:
    """The subject of ``explain RUN`` or ``explain --model NAME``."""
    if (run is None) == (model_name is None):
        raise UsageError("give exactly one of RUN and --model NAME", "e.g. explain runs/classify/my-run photo.jpg")
    if model_name is not None:
        return classifier(None, model_name, weights, size, cells)
    kind = read_run(run).model.get("kind")
    if kind not in SUBJECTS:
        makers = " or ".join(f"`{registry.RUN_KINDS[k].made_by}`" for k in SUBJECTS)
        raise UsageError(f"{run} holds a {kind} model, which explain does not take", f"pass a run made by {makers}")
    return SUBJECTS[kind](Path(run), size, cells)
