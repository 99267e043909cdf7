"""Exporting a trained run to ONNX or TorchScript for deployment: classifiers (N x 3 x H x W
normalised images -> logits) and segmenters (N x 3 x S x S images in [0, 1] at the run's training
size S -> class logits N x C x S x S; resize or tile other sizes, as ``segment apply`` does)."""

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
    from transferlab.runs import CLASSIFIER, KINDS, SEGMENTER, read_run

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    info = read_run(run)
    builders = {CLASSIFIER: _classifier, SEGMENTER: _segmenter}
    kind = info.model.get("kind")
    if kind not in builders:
        have = KINDS[kind].description if kind in KINDS else repr(kind)
        raise RunError(f"{run} holds {have}, which cannot be exported",
                       "export a classify, adapt or segment run")  # fmt: skip
    model, example = builders[kind](Path(run))
    target = Path(out) if out else Path(run) / f"model{FORMATS[fmt]}"
    with atomic_path(target) as tmp, torch.no_grad():
        if fmt == "torchscript":
            with warnings.catch_warnings():  # TorchScript is deprecated upstream, but still asked for
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.trace(model, example).save(str(tmp))
        else:
            _export_onnx(model, example, tmp)
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


def _export_onnx(model, example, path: Path) -> None:
    import torch

    try:
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs it
    except ImportError:
        raise UsageError(
            "ONNX export needs the packages onnx and onnxscript", "pip install 'transferlab[export]'"
        ) from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.onnx.export(
        model,
        (example,),
        dynamo=True,
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: batch}},
        external_data=False,
        verbose=False,
    )
    program.save(str(path))
