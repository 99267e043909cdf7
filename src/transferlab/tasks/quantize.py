"""int8 ONNX of a classifier run, with ONNX Runtime's post-training quantization, and the accuracy
it keeps, measured when it is made.

- ``int8`` (static): QDQ format, int8 weights per output channel, uint8 activations whose ranges
  are calibrated (min/max) on a seeded sample of the run's own training images; the CPU's integer
  units run the convolutions (VNNI / AMX where the CPU has them). Shape arithmetic stays in float.
- ``dynamic``: int8 weights, activation ranges computed per batch at run time; needs no
  calibration images, and speeds up MatMul-heavy networks (transformers) more than CNNs.

The held-out images are the run's own (its DATA re-split exactly as training split it: the same
seed and fraction), or ``--data``'s held-out part; the fp32 and the int8 model are scored on the
same batches, and a drop beyond ``max_drop`` points refuses the model unless ``force``. Written
by hand around ONNX Runtime: the library quantizes, but neither it nor another library knows a
run's data, its preprocessing or the check.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.data import DatasetSplits, load_data, load_images
from transferlab.data.collections import LabeledImages
from transferlab.data.loaders import make_batches
from transferlab.errors import DataError, RunError, UsageError
from transferlab.io import atomic_path, write_json
from transferlab.runs import CLASSIFIER, KINDS, read_run

MODES = ("int8", "dynamic")
SUFFIXES = {"int8": ".int8.onnx", "dynamic": ".dynamic-int8.onnx"}
REPORT_FILE = "quantization.json"
BATCH = 32


@dataclass
class Quantized:
    """What quantization made and kept: the file, and both models' scores on the same images."""

    path: Path
    fp32_path: Path
    mode: str
    measured_on: str
    images: int
    fp32_accuracy: float
    int8_accuracy: float
    agreement: float  # share of images whose top class the int8 model keeps
    drop_points: float
    calibration_images: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path), "fp32_path": str(self.fp32_path)}


def onnx_session(path: str | Path) -> Any:
    """An ONNX Runtime CPU session; tells how to install it where it is missing."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UsageError("ONNX Runtime is not installed", "pip install 'transferlab[export]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its warnings about unused initialisers are not the user's business
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def arrays(images: LabeledImages, preprocessing: dict[str, Any]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Batches of ``images`` as the run's classifier sees them at evaluation (N x C x H x W float32)."""
    source = make_batches(images, preprocessing, torch.device("cpu"), evaluation=True)
    for x, y in source.batches(BATCH, train=False):
        yield x.float().contiguous().numpy(), y.numpy()


def _run_parts(info: Any, data: str | None) -> tuple[DatasetSplits | None, str]:
    """The run's DATA split as its training split it (or ``data``'s), and what it is called."""
    source = data or info.extra.get("data_source")
    if source is None:
        return None, ""
    opts = info.extra.get("options", {})
    try:
        splits = load_data(source, val_fraction=opts.get("val_fraction", 0.2), seed=opts.get("seed", 0),
                           data_root=opts.get("data_root"))  # fmt: skip
    except DataError:
        if data:
            raise
        raise DataError(
            f"the run's data {source} is no longer readable", "pass --data DATA (the run's classes, held-out part)"
        ) from None
    if splits.classes != list(info.class_names):
        raise DataError(f"{source} has the classes {', '.join(splits.classes[:6])}, the run "
                        f"{', '.join(info.class_names[:6])}", "pass --data with the run's classes")  # fmt: skip
    if not data and opts.get("shots"):
        splits = splits.few_shot(opts["shots"], opts.get("seed", 0))
    return splits, str(source)


def _calibration_images(calibration: str | int, splits: DatasetSplits | None, seed: int) -> LabeledImages:
    if isinstance(calibration, str) and not calibration.isdigit():
        images, _, _ = load_images(calibration)
        return images
    count = int(calibration)
    if count < 1:
        raise UsageError(f"--calibration {count} is not a count of images", "e.g. --calibration 300")
    if splits is None:
        raise UsageError(
            "the run records no training data to calibrate on", "pass --data DATA or --calibration DIR (images)"
        )
    chosen = np.random.default_rng(seed).permutation(len(splits.train))[:count]
    return splits.train.subset(np.sort(chosen))


def shape_arithmetic(path: str | Path) -> list[str]:
    """The nodes that compute on tensor shapes only: ``Shape`` and every node whose inputs come
    from such nodes or constants (timm's TF-style "same" padding computes its pads so, in float).
    Quantizing them corrupts the pads: Lite0 fell from 62.8% to 16% held-out accuracy; left in
    float, int8 kept 63.0%."""
    import onnx

    graph = onnx.load(str(path)).graph
    constant = {tensor.name for tensor in graph.initializer}
    derived: set[str] = set()
    names = []
    for node in graph.node:  # stored in topological order
        inputs = [name for name in node.input if name and name not in constant]
        if node.op_type == "Constant":
            constant.update(node.output)
        elif node.op_type == "Shape" or (inputs and all(name in derived for name in inputs)):
            derived.update(node.output)
            names.append(node.name)
    return names


class _Reader:
    """ONNX Runtime's calibration reader over the calibration batches (its CalibrationDataReader
    protocol: ``get_next`` until None)."""

    def __init__(self, name: str, images: LabeledImages, preprocessing: dict[str, Any]) -> None:
        self.name, self.batches = name, arrays(images, preprocessing)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.name: batch[0]}


def scores(fp32: Any, int8: Any, images: LabeledImages, preprocessing: dict[str, Any]) -> dict[str, float]:
    """Top-1 accuracy of both sessions and their agreement, on the same batches."""
    name = fp32.get_inputs()[0].name
    right32 = right8 = agree = seen = 0
    for x, y in arrays(images, preprocessing):
        a, b = fp32.run(None, {name: x})[0].argmax(1), int8.run(None, {name: x})[0].argmax(1)
        right32, right8 = right32 + int((a == y).sum()), right8 + int((b == y).sum())
        agree, seen = agree + int((a == b).sum()), seen + len(y)
    return {"fp32": right32 / seen, "int8": right8 / seen, "agreement": agree / seen, "images": seen}


def quantize(
    run_dir: str | Path, *, mode: str = "int8", calibration: str | int = 300,
    data: str | None = None, max_drop: float = 1.0, force: bool = False, out: str | Path | None = None,
) -> Quantized:  # fmt: skip
    """Quantize the run's fp32 ONNX model (exported to RUN/model.onnx first) and keep it only if
    its accuracy on the held-out images drops at most ``max_drop`` points (or ``force``). Without
    held-out images (``--calibration DIR`` alone), the check is the top-1 agreement with fp32 on
    the calibration images. Writes RUN/model.int8.onnx (or ``out``) and quantization.json."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_dynamic,
        quantize_static,
    )

    if mode not in MODES:
        raise UsageError(f"unknown --quantize '{mode}'", f"use one of: {', '.join(MODES)}")
    started = time.perf_counter()
    info = _classifier(run_dir)
    from transferlab.tasks.export import current_onnx

    splits, source = _run_parts(info, data)
    calibration_set = None if mode == "dynamic" else _calibration_images(calibration, splits, 0)
    by_agreement = splits is None or not len(splits.val)  # no labelled held-out images: agreement with fp32
    if not by_agreement:
        held_out, measured_on = splits.val, f"{len(splits.val)} held-out images of {source}"
    elif calibration_set is not None:
        held_out, measured_on = calibration_set, f"{len(calibration_set)} calibration images (no held-out ones)"
    else:
        raise UsageError("the run records no held-out images to check the int8 model on",
                         "pass --data DATA (the run's classes)")  # fmt: skip
    target = Path(out) if out else Path(run_dir) / f"model{SUFFIXES[mode]}"
    fp32_path = current_onnx(run_dir)
    fp32 = onnx_session(fp32_path)
    with tempfile.TemporaryDirectory() as work, atomic_path(target) as tmp, _quiet_root_logger():
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared))  # shape inference and graph fusions first
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=shape_arithmetic(prepared))  # fmt: skip
        else:
            quantize_static(
                str(prepared), str(tmp), _Reader(fp32.get_inputs()[0].name, calibration_set, info.preprocessing),
                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                nodes_to_exclude=shape_arithmetic(prepared),
            )  # fmt: skip
        try:
            measured = scores(fp32, onnx_session(tmp), held_out, info.preprocessing)
        except Exception as exc:  # ONNX Runtime's own errors (its kernels' limits), not ours
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            side, said = info.preprocessing["input_size"][-1], str(exc).splitlines()[0][:160]
            raise RunError(
                f"ONNX Runtime cannot run the {mode} model of this network at {side} px ({said})",
                "try --quantize dynamic, or a run trained at a larger --img-size (64 or more)",
            ) from None
        drop = 100 * (1 - measured["agreement"] if by_agreement else measured["fp32"] - measured["int8"])
        result = Quantized(
            target, fp32_path, mode, measured_on, measured["images"], measured["fp32"], measured["int8"],
            measured["agreement"], round(drop, 2), len(calibration_set) if calibration_set is not None else 0,
            time.perf_counter() - started,
        )  # fmt: skip
        if drop > max_drop and not force:  # raised inside: the file is never written
            lost = "top-1 agreement" if by_agreement else "accuracy"
            raise UsageError(
                f"{mode} costs {drop:.1f} points of {lost} on {measured_on} (fp32 {measured['fp32']:.1%}, {mode} "
                f"{measured['int8']:.1%}, agreement {measured['agreement']:.1%}), more than --max-drop {max_drop:g}",
                "calibrate on more images (--calibration 1000), or keep it anyway with --force"
                if mode == "int8"
                else "use --quantize int8 (calibrated on the run's images), or keep it anyway with --force",
            )
    write_json(target.with_name(target.name.removesuffix(".onnx") + "." + REPORT_FILE), result.as_dict())
    return result


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer logs every tensor it leaves in float (shape arithmetic) as a warning
    on the root logger: not the user's business."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _classifier(run_dir: str | Path) -> Any:
    """The classifier run; other kinds get the reason they cannot be quantized yet."""
    info = read_run(run_dir)
    kind = info.model.get("kind")
    if kind != CLASSIFIER:
        have = KINDS[kind].description if kind in KINDS else repr(kind)
        raise RunError(
            f"{run_dir} holds {have}; int8 export is built and measured for classifiers only",
            "export it in fp32 (leave out --quantize); quantizing segmenters and detectors is not measured yet",
        )
    return info


__all__ = ["MODES", "Quantized", "onnx_session", "quantize", "scores"]
