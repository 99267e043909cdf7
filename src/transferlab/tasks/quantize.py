"""int8 ONNX of a classifier, segmenter or detector run, with ONNX Runtime's post-training quantization, and
the score it keeps, measured when it is made.

- ``int8`` (static): QDQ format, int8 weights per output channel, uint8 activations whose ranges
  are calibrated on a seeded sample of the run's own training images; the CPU's integer units run
  the convolutions (VNNI / AMX where the CPU has them). Shape arithmetic stays in float. A range
  spans the 99.999th percentile of each activation (``percentile``) by default, not its min/max:
  a fully fine-tuned EfficientNet-Lite0 at 224 px lost 5.3 points with min/max ranges, none with
  percentiles, since a few outliers stretch a min/max range and coarsen every other value's step.
- ``dynamic``: int8 weights, activation ranges computed per batch at run time; needs no
  calibration images, and speeds up MatMul-heavy networks (transformers) more than CNNs.

The run's task says which images calibrate and how a model is scored (its API's ``int8_check``:
a classifier's accuracy on its DATA re-split exactly as training split it, a segmenter's mIoU and
a detector's mAP on ``--data``'s held-out part); the fp32 and the int8 model are scored on the same images, and a drop
beyond ``max_drop`` points refuses the model unless ``force``. Written by hand around ONNX Runtime:
the library quantizes, but neither it nor another library knows a run's data, its preprocessing
or the check.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.errors import DataError, RunError, UsageError
from transferlab.io import atomic_path, write_json
from transferlab.progress import track
from transferlab.runs import KINDS, read_run
from transferlab.tasks.onnx_graph import shape_arithmetic

MODES = ("int8", "dynamic")
SUFFIXES = {"int8": ".int8.onnx", "dynamic": ".dynamic-int8.onnx"}
REPORT_FILE = "quantization.json"
CALIBRATION_BATCH = 8  # images whose intermediate tensors the calibrator holds at once
CALIBRATIONS = ("percentile", "minmax")
PERCENTILE = 99.999  # of each activation's values kept inside its int8 range (the rest saturate)
SCORING = "scoring fp32 and int8"  # the progress bar of every task's check


@dataclass
class Int8Check:
    """What a task gives ``quantize`` for one of its runs (its API's ``int8_check``): the inputs to
    calibrate on, as its exported model takes them, and the score both models get on the same
    held-out images."""

    calibration: Callable[[int], Iterator[np.ndarray]] | None  # batch size -> input batches (None: dynamic)
    calibration_images: int
    score: Callable[[Any, Any], dict[str, float]]  # (fp32, int8 session) -> fp32, int8, agreement, images
    measured_on: str
    metric: str  # what fp32 and int8 are: "accuracy", "mIoU", "mAP"; with by_agreement, "top-1 agreement"
    side: int  # the model's input side, for messages
    by_agreement: bool = False  # no labelled held-out images: the drop is 1 - agreement with fp32
    batched: bool = True  # False: calibration yields one input per image (a graph without a batch axis)
    shape_inference: bool = True  # False where ONNX Runtime's symbolic shape inference stops on the graph
    op_types: tuple[str, ...] | None = None  # the op types quantized (None: every one ONNX Runtime can)


@dataclass
class Quantized:
    """What quantization made and kept: the file, and both models' scores on the same images."""

    path: Path
    fp32_path: Path
    mode: str
    measured_on: str
    images: int
    metric: str  # what fp32_score and int8_score are (accuracy, mIoU, mAP)
    fp32_score: float
    int8_score: float
    agreement: float  # share of images (pixels; confident detections) whose class the int8 model keeps
    drop_points: float
    calibration_images: int
    seconds: float
    calibration_method: str = ""  # how activation ranges were chosen (static int8 only)

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


def calibration_count(calibration: str | int) -> int:
    """``--calibration N``'s count (a folder is the task's to read)."""
    count = int(calibration)
    if count < 1:
        raise UsageError(f"--calibration {count} is not a count of images", "e.g. --calibration 300")
    return count


def calibration_sample(calibration: str | int, total: int, noun: str) -> list[int]:
    """The seeded, sorted indices of ``--calibration N`` of a task's ``total`` training images, for
    the tasks (``noun``: a segmenter, a detector) that calibrate on DATA's training images only."""
    if isinstance(calibration, str) and not calibration.isdigit():
        raise UsageError(f"{noun} calibrates on DATA's training images", "pass --calibration N (a count)")
    return sorted(np.random.default_rng(0).permutation(total)[: calibration_count(calibration)].tolist())


def run_data(data: str | None, recorded: bool, task: str, holds: str) -> None:
    """A run whose options do not name its images (``recorded``) needs ``--data``."""
    if data is None and not recorded:
        raise UsageError(f"a {task} run does not record its DATA folder", f"pass --data DATA ({holds})")


def same_classes(found: list[str], run: list[str], where: str) -> None:
    """The data checked on must have the run's classes, in its order."""
    if found != list(run):
        raise DataError(f"{where} has the classes {', '.join(found[:6])}, the run {', '.join(run[:6])}",
                        "pass --data with the run's classes")  # fmt: skip


class _Reader:
    """ONNX Runtime's calibration reader over the calibration batches: its CalibrationDataReader
    protocol (``get_next`` until None), with ``__len__`` and ``set_range`` so that the quantizer
    collects one batch at a time (``CalibStridedMinMax``). Collected whole, the calibrator keeps
    every intermediate tensor of every image: 300 Lite0 images at 224 px took 22 GB."""

    def __init__(self, name: str, check: Int8Check) -> None:
        assert check.calibration is not None
        self.length = -(-check.calibration_images // CALIBRATION_BATCH) if check.batched else check.calibration_images
        self.name, self.count = name, 0
        # ONNX Runtime prints between batches: to the quiet stdout (_quiet_quantizer), not above the bar
        self.batches = track(check.calibration(CALIBRATION_BATCH), "calibrating", self.length, redirect_stdout=False)

    def __len__(self) -> int:
        return self.length

    def set_range(self, start_index: int, end_index: int) -> None:  # the quantizer walks the batches in order
        self.count = end_index - start_index

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None) if self.count > 0 else None
        self.count -= 1
        return None if batch is None else {self.name: batch}

    def finish(self) -> None:
        """Close the progress bar: it counts a batch once the next is asked for, which the
        quantizer never does after its last."""
        for _ in self.batches:
            pass


def quantize(
    run_dir: str | Path, *, mode: str = "int8", calibration: str | int = 300,
    data: str | None = None, max_drop: float = 1.0, force: bool = False, out: str | Path | None = None,
    calibration_method: str = "percentile",
) -> Quantized:  # fmt: skip
    """Quantize the run's fp32 ONNX model (exported to RUN/model.onnx first, afresh) and keep it only if
    its score on the held-out images (accuracy, mIoU, mAP) drops at most ``max_drop`` points (or
    ``force``). Without held-out images (a classifier with ``--calibration DIR`` alone), the check
    is the top-1 agreement with fp32 on the calibration images. Writes RUN/model.int8.onnx (or
    ``out``) and its quantization.json."""
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
    if calibration_method not in CALIBRATIONS:
        raise UsageError(f"unknown --calibration-method '{calibration_method}'",
                         f"use one of: {', '.join(CALIBRATIONS)}")  # fmt: skip
    started = time.perf_counter()
    check = _int8_check(run_dir)(run_dir, calibration=calibration, data=data, calibrate=mode == "int8")
    from transferlab.tasks.export import export

    target = Path(out) if out else Path(run_dir) / f"model{SUFFIXES[mode]}"
    fp32_path = export(run_dir, "onnx")  # afresh, as `export` always writes: the model quantized is today's
    fp32 = onnx_session(fp32_path)
    with tempfile.TemporaryDirectory() as work, atomic_path(target) as tmp, _quiet_quantizer():
        prepared = Path(work) / "prepared.onnx"
        _prepare(fp32_path, prepared, check.shape_inference, quant_pre_process)
        which = {"nodes_to_exclude": shape_arithmetic(prepared),
                 "op_types_to_quantize": list(check.op_types) if check.op_types else None}  # fmt: skip
        if mode == "dynamic":
            quantize_dynamic(str(prepared), str(tmp), weight_type=QuantType.QInt8, per_channel=True, **which)
        else:
            reader = _Reader(fp32.get_inputs()[0].name, check)
            quantize_static(
                str(prepared), str(tmp), reader,
                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, **which,
                calibrate_method={"percentile": CalibrationMethod.Percentile,
                                  "minmax": CalibrationMethod.MinMax}[calibration_method],
                extra_options={"CalibStridedMinMax": 1, "CalibPercentile": PERCENTILE},
            )  # fmt: skip
            reader.finish()
        try:
            measured = check.score(fp32, onnx_session(tmp))
        except Exception as exc:  # ONNX Runtime's own errors (its kernels' limits), not ours
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            said = str(exc).splitlines()[0][:160]
            raise RunError(
                f"ONNX Runtime cannot run the {mode} model of this network at {check.side} px ({said})",
                "try --quantize dynamic, or a run trained at a larger --img-size (64 or more)",
            ) from None
        drop = 100 * (1 - measured["agreement"] if check.by_agreement else measured["fp32"] - measured["int8"])
        result = Quantized(
            target, fp32_path, mode, check.measured_on, int(measured["images"]), check.metric, measured["fp32"],
            measured["int8"], measured["agreement"], round(drop, 2), check.calibration_images,
            time.perf_counter() - started, calibration_method if mode == "int8" else "",
        )  # fmt: skip
        if drop > max_drop and not force:  # raised inside: the file is never written
            raise UsageError(
                f"{mode} costs {drop:.1f} points of {check.metric} on {check.measured_on} (fp32 "
                f"{measured['fp32']:.1%}, {mode} {measured['int8']:.1%}, agreement {measured['agreement']:.1%}), "
                f"more than --max-drop {max_drop:g}",
                f"try --calibration-method {'minmax' if calibration_method == 'percentile' else 'percentile'} or "
                "more images (--calibration 1000), or keep it anyway with --force"
                if mode == "int8"
                else "use --quantize int8 (calibrated on the run's images), or keep it anyway with --force",
            )  # fmt: skip
    write_json(target.with_name(target.name.removesuffix(".onnx") + "." + REPORT_FILE), result.as_dict())
    return result


def _prepare(fp32_path: Path, prepared: Path, shape_inference: bool, quant_pre_process: Any) -> None:
    """ONNX Runtime's shape inference and graph fusions before quantizing. ``auto_merge``: a
    U-Net's upsampling otherwise stops the inference; where it still stops, the graph is prepared
    without it. Run in the temporary folder: a stopped inference leaves a copy of the model in the
    working folder."""
    source, target = str(fp32_path.resolve()), str(prepared.resolve())
    with contextlib.chdir(prepared.parent):
        try:
            quant_pre_process(source, target, auto_merge=True, skip_symbolic_shape=not shape_inference)
        except Exception as exc:  # ONNX Runtime raises a bare Exception here
            if "symbolic shape inference" not in str(exc):
                raise
            quant_pre_process(source, target, skip_symbolic_shape=True)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """ONNX Runtime's quantizer logs every tensor it leaves in float (shape arithmetic) as a warning
    on the root logger, and prints its histogram calibration's steps: not the user's business."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _int8_check(run_dir: str | Path) -> Callable[..., Int8Check]:
    """The run's task's ``int8_check``; runs of other tasks get the reason they are not quantized."""
    from transferlab.registry import OWNERS

    kind = read_run(run_dir).model.get("kind")
    task = OWNERS.get(kind)
    check = getattr(task.api(), "int8_check", None) if task is not None else None
    if check is None:
        have = KINDS[kind].description if kind in KINDS else repr(kind)
        able = [k.description for k in KINDS.values() if hasattr(OWNERS[k.name].api(), "int8_check")]
        raise RunError(f"{run_dir} holds {have}; int8 export is built only for {', '.join(able)}",
                       "export it in fp32 (leave out --quantize)")  # fmt: skip
    return check


__all__ = ["MODES", "SCORING", "Int8Check", "Quantized", "calibration_count", "calibration_sample", "onnx_session",
           "quantize", "run_data", "same_classes"]  # fmt: skip
