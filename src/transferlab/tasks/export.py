"""Exporting a trained run to ONNX or TorchScript for deployment: classifiers (N x 3 x H x W
normalised images -> logits), segmenters (N x 3 x S x S images in [0, 1] at the run's training
size S -> class logits N x C x S x S; resize or tile other sizes, as ``segment apply`` does) and
detectors (ONNX only: one 3 x H x W image in [0, 1] of any size -> boxes K x 4 in its pixels,
scores K, labels K from 0; resizing and non-maximum suppression are inside the graph)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from transferlab.errors import RunError, UsageError
from transferlab.io import atomic_path
from transferlab.registry import OWNERS, TASKS
from transferlab.runs import KINDS, read_run
from transferlab.tasks.onnx_graph import fold_fixed_shapes

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
#: The ONNX graph's names for a network from a batch of images to one output per image (a task's
#: ``exportable`` gives its own where it differs, as detect does).
IMAGES_TO_LOGITS = {
    "input_names": ["images"],
    "output_names": ["logits"],
    "dynamic_axes": {"images": [0], "logits": [0]},
}


def export(run: str | Path, fmt: str = "onnx", out: str | Path | None = None) -> Path:
    """Write the run's model in ``fmt``; returns the file. The task that made the run says which
    formats it exports (``Task.exports``) and gives the network (its API's ``exportable``)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    kind = read_run(run).model.get("kind")
    task = OWNERS.get(kind)
    if task is None or not task.exports:
        have = KINDS[kind].description if kind in KINDS else repr(kind)
        exporters = ", ".join(t.name for t in TASKS.values() if t.exports)
        raise RunError(f"{run} holds {have}, which cannot be exported", f"export a run of: {exporters}")
    if fmt not in task.exports:
        only = " or ".join(f.upper() if f == "onnx" else f for f in task.exports)
        raise UsageError(f"a {task.name} run is exported to {only} only", f"use --format {task.exports[0]}")
    model, example, names = task.api().exportable(Path(run))
    target = Path(out) if out else Path(run) / f"model{FORMATS[fmt]}"
    with atomic_path(target) as tmp, torch.no_grad():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # TorchScript is deprecated upstream, but still asked for
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.trace(model, example).save(str(tmp))
        else:
            _export_onnx(model, example, tmp, names or IMAGES_TO_LOGITS)
    return target


def current_onnx(run: str | Path) -> Path:
    """The run's ``model.onnx``, exported when missing or older than the run's weights (serve,
    benchmark and quantize use it; ``export`` itself always writes)."""
    path = Path(run) / "model.onnx"
    weights = read_run(run).weights_path
    if not path.is_file() or path.stat().st_mtime < weights.stat().st_mtime:
        from transferlab.progress import announce

        announce(f"exporting {run} to ONNX (once) ...")
        export(run, "onnx", path)
    return path


def _need_onnxscript() -> None:
    try:
        import onnxruntime  # noqa: F401 - folds the graph's fixed shapes
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError:
        raise UsageError(
            "ONNX export needs the packages onnx and onnxscript", "pip install 'transferlab[export]'"
        ) from None


def _export_onnx(model: Any, example: Any, path: Path, names: dict[str, Any]) -> None:
    """torch's TorchScript-based exporter: torchvision's detection models are written and tested for
    it (dynamic image size, data-dependent box counts; torch.export stops on the latter), and it
    exports a Lite0 classifier in 1.4 s where torch.export's exporter takes 21 s (2-core CPU).
    Where only the batch is free (classifiers, segmenters), the shapes the image size fixes are
    folded into constants (``onnx_graph.fold_fixed_shapes``)."""
    _need_onnxscript()
    with warnings.catch_warnings():  # the TorchScript-based exporter is deprecated upstream, but works here
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=17, **names)
    if names.get("dynamic_axes") == IMAGES_TO_LOGITS["dynamic_axes"]:
        fold_fixed_shapes(path)
