"""Exporting a trained classifier run to ONNX or TorchScript for deployment."""

from __future__ import annotations

import warnings
from pathlib import Path

from transferlab.errors import UsageError
from transferlab.io import atomic_path

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


def export(run: str | Path, fmt: str = "onnx", out: str | Path | None = None) -> Path:
    """Write the run's model (inputs: N x 3 x H x W normalised images; outputs: logits)."""
    import torch

    from transferlab import backbones
    from transferlab.runs import CLASSIFIER, read_run

    if fmt not in FORMATS:
        raise UsageError(f"unknown export format '{fmt}'", f"use one of: {', '.join(FORMATS)}")
    info = read_run(run, model_kind=CLASSIFIER)
    model = backbones.from_run(info).model.eval()
    size = tuple(info.preprocessing["input_size"])
    example = torch.randn(2, *size)
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
