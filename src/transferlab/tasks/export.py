"""Exporting a trained run to ONNX or TorchScript for deployment: classifiers (N x 3 x H x W
normalised images -> logits), segmenters (N x 3 x S x S images in [0, 1] at the run's training
size S -> class logits N x C x S x S; resize or tile other sizes, as ``segment apply`` does) and
detectors (ONNX only: one 3 x H x W image in [0, 1] of any size -> boxes K x 4 in its pixels,
scores K, labels K from 0; resizing and non-maximum suppression are inside the graph)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from transferlab.errors import UsageError
from transferlab.io import atomic_path

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def export(run: str | Path, fmt: str = "onnx", out: str | Path | None = None) -> Path:
    """Write the run's model in ``fmt``; returns the file."""
    import torch

    from transferlab.errors import RunError
    from transferlab.runs import CLASSIFIER, DETECTOR, KINDS, SEGMENTER, read_run

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    info = read_run(run)
    builders = {CLASSIFIER: _classifier, SEGMENTER: _segmenter, DETECTOR: _detector}
    kind = info.model.get("kind")
    if kind not in builders:
        have = KINDS[kind].description if kind in KINDS else repr(kind)
        raise RunError(f"{run} holds {have}, which cannot be exported",
                       "export a classify, adapt, segment or detect run")  # fmt: skip
    if kind == DETECTOR and fmt != "onnx":
        raise UsageError("a detector is exported to ONNX only (tracing cannot keep its per-image box counts)",
                         "use --format onnx")  # fmt: skip
    model, example = builders[kind](Path(run))
    target = Path(out) if out else Path(run) / f"model{FORMATS[fmt]}"
    with atomic_path(target) as tmp, torch.no_grad():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # TorchScript is deprecated upstream, but still asked for
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.trace(model, example).save(str(tmp))
        else:
            _export_onnx(model, example, tmp, detector=kind == DETECTOR)
    return target


def _classifier(run: Path) -> tuple[Any, Any]:
    import torch

    from transferlab import backbones
    from transferlab.runs import CLASSIFIER, read_run

    info = read_run(run, model_kind=CLASSIFIER)
    return backbones.from_run(info).model.eval(), torch.randn(2, *tuple(info.preprocessing["input_size"]))


def _segmenter(run: Path) -> tuple[Any, Any]:
    """At the run's training size: torch.export with free height and width did not finish here
    (minutes, then stopped), while a fixed size exports in seconds and matches to 1e-7."""
    import torch

    from transferlab.tasks.segment import load_segmenter

    net, spec = load_segmenter(run)
    size = int(spec["img_size"])
    return net, torch.rand(2, 3, size, size)


def _detector(run: Path) -> tuple[Any, Any]:
    import torch

    from transferlab.tasks.detect import OneImageDetector, load_detector

    net, spec = load_detector(run)
    size = int(spec["img_size"])
    return OneImageDetector(net).eval(), torch.rand(3, size, size * 3 // 4)


def _need_onnxscript() -> None:
    try:
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError:
        raise UsageError(
            "ONNX export needs the packages onnx and onnxscript", "pip install 'transferlab[export]'"
        ) from None


def _export_onnx(model: Any, example: Any, path: Path, detector: bool = False) -> None:
    """torch's TorchScript-based exporter: torchvision's detection models are written and tested for
    it (dynamic image size, data-dependent box counts; torch.export stops on the latter), and it
    exports a Lite0 classifier in 1.4 s where torch.export's exporter takes 21 s (2-core CPU)."""
    import torch

    _need_onnxscript()
    if detector:
        names = {"input_names": ["image"], "output_names": ["boxes", "scores", "labels"],
                 "dynamic_axes": {"image": [1, 2], "boxes": [0], "scores": [0], "labels": [0]}}  # fmt: skip
    else:
        names = {"input_names": ["images"], "output_names": ["logits"],
                 "dynamic_axes": {"images": [0], "logits": [0]}}  # fmt: skip
    with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated upstream, but works here
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17, **names)
