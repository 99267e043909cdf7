"""Evaluating a trained classifier run on labelled images, and the pictures that go with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from transferlab import backbones, metrics
from transferlab.data.collections import LabeledImages
from transferlab.data.loaders import make_batches
from transferlab.data.transforms import split_eval_transform
from transferlab.engine.performance import for_inference
from transferlab.errors import UsageError
from transferlab.io import write_json
from transferlab.options.classify import ClassifyOptions
from transferlab.reports import plots
from transferlab.runs import RunInfo

#: How many of the hardest images the report shows with their maps (a second each on a CPU).
MAPPED = 6


def run_logits(
    run: RunInfo, images: LabeledImages, device: torch.device, batch_size: int = 128
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of the run's classifier for every image, in order (run as training ran on this device)."""

    performance = for_inference(device, ClassifyOptions.cpu_defaults)
    model = backbones.from_run(run).model.to(device)
    # the pixels predict sees, in the memory format the network runs in
    source = make_batches(images, run.preprocessing, device, evaluation=True, channels_last=performance.channels_last)
    outputs, labels = [], []
    with performance.inference(model):
        for x, y in source.batches(batch_size, train=False):
            outputs.append(model(x).float().cpu())
            labels.append(y.cpu())
    return torch.cat(outputs), torch.cat(labels)


def write_evaluation(
    run_dir: Path,
    images: LabeledImages,
    classes: list[str],
    logits: torch.Tensor,
    labels: torch.Tensor,
    name: str = "evaluation",
    explained_run: Path | None = None,
) -> dict[str, Any]:
    """``<name>.json``, ``confusion.png`` and ``hardest.png`` (highest-loss images) in ``run_dir``;
    with ``explained_run`` (the run the logits are of), ``hardest_maps.png``: the six hardest with
    the Grad-CAM map of what the run predicted."""
    scores = metrics.compute("classification", logits=logits, labels=labels, classes=classes)
    write_json(run_dir / f"{name}.json", scores)
    plots.confusion_matrix(scores["confusion_matrix"], classes, run_dir / "confusion.png")
    losses = F.cross_entropy(logits, labels, reduction="none")
    hardest = torch.argsort(losses, descending=True)[:18].tolist()
    predicted = logits.argmax(1)
    captions = [f"true {classes[labels[i]]}\npred {classes[predicted[i]]} ({losses[i]:.2f})" for i in hardest]
    plots.image_gallery(
        [images.image(i) for i in hardest], captions, run_dir / "hardest.png", "highest-loss validation images"
    )
    if explained_run is not None:
        from transferlab.tasks.explain import overlays  # the public API of `transferlab explain`

        try:
            pictures = overlays(explained_run, [images.image(i) for i in hardest[:MAPPED]])
        except UsageError:  # a network without a spatial map (a ViT): the report goes without maps
            return scores
        plots.image_gallery(pictures, captions[:MAPPED], run_dir / "hardest_maps.png",
                            "where the model looked (Grad-CAM of its prediction)")  # fmt: skip
    return scores


def corruption_accuracy(run: RunInfo, images: LabeledImages, device: torch.device, batch_size: int = 64) -> Callable:
    """The run's top-1 accuracy on ``images`` as ``robustness`` scores it: ``accuracy(change)``,
    where ``change`` corrupts the very pixels the network is given (after the resize and crop of its
    preprocessing, as ImageNet-C corrupts its 224 px crops), None for the clean ones. The clean pass
    goes through this path too, a check that it is the plain evaluation's (tested)."""
    performance = for_inference(device, ClassifyOptions.cpu_defaults)
    built = backbones.from_run(run)
    model = built.model.to(device)
    to_pixels, to_tensor = split_eval_transform(built.data_config)
    pixels = [to_pixels(images.image(i)) for i in range(len(images))]
    labels = torch.as_tensor(np.asarray(images.labels))

    def accuracy(change: Callable | None) -> float:
        correct = 0
        with performance.inference(model):
            for start in range(0, len(pixels), batch_size):
                batch = pixels[start : start + batch_size]
                x = to_tensor(torch.from_numpy(np.stack(change(batch) if change else batch))).to(device)
                predicted = model(performance.inputs(x)).argmax(1).cpu()
                correct += int((predicted == labels[start : start + batch_size]).sum())
        return correct / len(pixels)

    return accuracy
