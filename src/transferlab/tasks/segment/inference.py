"""Inference with a segmentation network, shared by training's held-out scoring, ``evaluate``,
``apply``, the report and the server: loading a run's network, class logits of one image at its
own resolution, and the scores over a split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from transferlab import metrics
from transferlab.dense import DECODERS
from transferlab.errors import RunError
from transferlab.metrics.segmentation import confusion
from transferlab.pixels import whole_image_size
from transferlab.progress import track
from transferlab.runs import SEGMENTER, read_run
from transferlab.tasks.segment.data import Split


def load_segmenter(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of a segment run and its spec (with ``classes``); other runs are refused."""
    run = read_run(run_dir, model_kind=SEGMENTER)
    spec = {**run.model, "classes": run.class_names}
    spec["predict_size"] = int(spec.get("predict_size", spec["img_size"]))  # runs before it predicted at img_size
    if spec["decoder"] == "unet" and spec.get("decoder_version", 1) < 2:  # saved before unet took smp's layout
        spec["decoder"] = "unet-transposed"
    try:
        net = DECODERS[spec["decoder"]](f"{spec['backbone']}:random", 3, int(spec["img_size"]), int(spec["width"]),
                                        False, int(spec["num_classes"]))  # fmt: skip
        net.load_state_dict(load_file(str(run.weights_path)))
    except (KeyError, RuntimeError) as exc:
        raise RunError(f"the weights of {run_dir} do not fit its network ({str(exc).splitlines()[0][:100]})",
                       "retrain it with `transferlab segment train`") from None  # fmt: skip
    return net.to(device).eval(), spec


def predict_logits(net: nn.Module, image: torch.Tensor, img_size: int, performance: Any) -> torch.Tensor:
    """Class logits (C x H x W, float, CPU) of one uint8 image at its own resolution."""
    device = next(net.parameters()).device
    h, w = image.shape[-2:]
    x = F.interpolate(image[None].float().div(255), size=whole_image_size(h, w, img_size), mode="bilinear",
                      antialias=True, align_corners=False)  # fmt: skip
    with performance.inference(net):
        logits = net(performance.inputs(x.to(device))).float()
    return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)[0].cpu()


def score(
    net: nn.Module, split: Split, classes: list[str], ignore: int, img_size: int, performance: Any,
    progress: bool = False,
) -> dict:  # fmt: skip
    """``metrics.compute("segmentation")`` over every image of ``split`` (void excluded); with
    ``progress``, under a progress bar (outside training, whose own bar is live)."""
    total = torch.zeros(len(classes), len(classes), dtype=torch.long)
    pairs = zip(split.images, split.masks)
    for image, mask in track(pairs, "scoring", len(split)) if progress else pairs:
        prediction = predict_logits(net, image, img_size, performance).argmax(0)
        total += confusion(prediction, mask, len(classes), ignore)
    return metrics.compute("segmentation", matrix=total, classes=classes)
