"""Inference with a detector, shared by training's held-out scoring, ``evaluate``, ``apply``, the
report and the server: loading a run's network, detections of images of any sizes, and the scores
over a split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from transferlab import metrics
from transferlab.engine.performance import for_inference
from transferlab.errors import RunError
from transferlab.options.detect import DetectOptions
from transferlab.progress import track
from transferlab.runs import DETECTOR, read_run
from transferlab.tasks.detect.data import Split
from transferlab.tasks.detect.models import Detector, build_detector


def load_detector(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network of a detect run and its spec (with ``classes``); other runs are refused."""
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


def predict(
    net: Detector, images: list[torch.Tensor], batch_size: int = 8, progress: bool = False, performance: Any = None
) -> list[dict[str, torch.Tensor]]:
    """Detections (on CPU) for uint8 images of any sizes, in their own pixels, ``batch_size`` at a
    time, run as ``performance`` says (default: the task's rule for the network's device); with
    ``progress``, under a progress bar (outside training, whose own bar is live)."""
    device = next(net.parameters()).device
    performance = performance or for_inference(device, DetectOptions.cpu_defaults)
    out: list[dict[str, torch.Tensor]] = []
    starts = range(0, len(images), batch_size)
    with performance.inference(net):
        for start in track(starts, "detecting", len(starts)) if progress else starts:
            batch = [im.to(device).float().div(255) for im in images[start : start + batch_size]]
            out += [{"boxes": d["boxes"].float().cpu(), "scores": d["scores"].float().cpu(),
                     "labels": d["labels"].cpu()} for d in net(batch)]  # fmt: skip
    return out


def score(
    net: Detector, split: Split, classes: list[str], batch_size: int = 8, progress: bool = False,
    performance: Any = None,
) -> tuple[dict, list[dict]]:  # fmt: skip
    """``metrics.compute("detection")`` over every image of ``split`` (difficult boxes ignored), and
    the detections themselves."""
    predictions = predict(net, split.images, batch_size, progress, performance)
    targets = [split.target(i) for i in range(len(split))]
    return metrics.compute("detection", predictions=predictions, targets=targets, classes=classes), predictions
