"""`export --quantize` (int8 ONNX, its held-out check) and `benchmark` (torch / ONNX fp32 / int8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error, make_class_folder
from transferlab.data import from_arrays
from transferlab.tasks import classify

FAST = {"img_size": 64, "batch_size": 16, "epochs": 3, "warmup_epochs": 0.5, "devices": 1}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A Lite0 classifier trained on a folder, so the run knows its data."""
    root = tmp_path_factory.mktemp("q")
    folder = make_class_folder(root / "shapes", {"red": 15, "green": 15, "blue": 15})
    classify.fit(str(folder), out=root / "run", backbone="tf_efficientnet_lite0", **FAST)
    return root / "run"


def test_int8_export_measures_both_models_on_the_held_out_images(run, cli):
    code, out, err = cli("export", run, "--quantize", "int8", "--calibration", "20", "--max-drop", "100")
    assert code == 0, err
    made = run / "model.int8.onnx"
    report = json.loads((run / "model.int8.quantization.json").read_text())
    assert made.is_file() and (run / "model.onnx").is_file() and f"{report['fp32_accuracy']:.2%}" in out
    assert report["images"] == 9 and report["calibration_images"] == 20 and "held-out" in report["measured_on"]
    expected = 100 * (report["fp32_accuracy"] - report["int8_accuracy"])
    assert report["drop_points"] == pytest.approx(expected, abs=0.01) and 0 <= report["agreement"] <= 1
    assert made.stat().st_size < (run / "model.onnx").stat().st_size / 2.5  # int8 weights: about a quarter

    from transferlab.tasks.quantize import onnx_session

    session = onnx_session(made)  # a QDQ graph that ONNX Runtime runs
    logits = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 3, 64, 64), np.float32)})[0]
    assert logits.shape == (2, 3)


def test_shape_arithmetic_stays_in_float(run, cli):
    """Lite0's TF-style padding computes its pads from the input's shape: those nodes are left out."""
    import onnx

    assert cli("export", run, "--quantize", "int8", "--calibration", "10", "--force")[0] == 0

    from transferlab.tasks.quantize import shape_arithmetic

    graph = onnx.load(str(run / "model.onnx")).graph
    left = set(shape_arithmetic(run / "model.onnx"))
    kinds = {node.op_type for node in graph.node if node.name in left}
    assert "Shape" in kinds and not kinds & {"Conv", "Gemm", "Pad"}
    int8 = onnx.load(str(run / "model.int8.onnx")).graph
    quantized_inputs = {i for node in int8.node if node.op_type == "DequantizeLinear" for i in node.output}
    pads = [node for node in int8.node if node.op_type == "Pad"]
    assert pads and all(node.input[1] not in quantized_inputs for node in pads)  # the pads themselves: float


def test_dynamic_quantization_needs_no_calibration(run, cli):
    code, _, err = cli("export", run, "--quantize", "dynamic", "--max-drop", "100")
    assert code == 0, err
    assert json.loads((run / "model.dynamic-int8.quantization.json").read_text())["calibration_images"] == 0


def test_a_drop_past_max_drop_is_refused_and_nothing_written(run, cli, monkeypatch, tmp_path):
    from transferlab.tasks import quantize

    monkeypatch.setattr(quantize, "scores", lambda *a: {"fp32": 0.9, "int8": 0.8, "agreement": 0.85, "images": 9})
    target = tmp_path / "small.onnx"
    assert_user_error(cli("export", run, "--quantize", "int8", "-o", target, "--calibration", "8"),
                      "costs 10.0 points of accuracy", "--force")  # fmt: skip
    assert not target.exists() and not list(tmp_path.iterdir())
    code, _, err = cli("export", run, "--quantize", "int8", "-o", target, "--calibration", "8", "--force")
    assert code == 0 and target.is_file(), err


def test_runs_without_recorded_data_need_data_or_a_calibration_folder(tmp_path, cli):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 255, (24, 20, 20, 3), dtype=np.uint8), np.repeat([0, 1], 12)
    classify.fit(from_arrays(x, y), out=tmp_path / "mem", backbone="resnet10t", strategy="scratch", **FAST)
    assert_user_error(cli("export", tmp_path / "mem", "--quantize", "int8"), "records no training data", "--data")
    images = make_class_folder(tmp_path / "calib", {"a": 5})
    code, _, err = cli("export", tmp_path / "mem", "--quantize", "int8", "--calibration", images, "--force")
    assert code == 0, err
    report = json.loads((tmp_path / "mem" / "model.int8.quantization.json").read_text())
    assert "calibration images (no held-out ones)" in report["measured_on"] and report["images"] == 5


def test_bad_quantize_requests(run, tmp_path, cli):
    assert_user_error(cli("export", run, "--quantize", "int4"), "unknown --quantize 'int4'")
    assert_user_error(cli("export", run, "--quantize", "int8", "--format", "torchscript"), "--format onnx")
    assert_user_error(cli("export", run, "--quantize", "int8", "--calibration", "0"), "--calibration 0")
    from transferlab.runs import save_run

    save_run(tmp_path / "seg", task="segment", state_dict={}, model={"kind": "segmenter"}, class_names=["a"],
             preprocessing={})  # fmt: skip
    assert_user_error(cli("export", tmp_path / "seg", "--quantize", "int8"), "for classifiers only")


def test_benchmark_times_torch_and_both_onnx_models(run, cli):
    cli("export", run, "--quantize", "int8", "--calibration", "10", "--force")
    code, out, err = cli("benchmark", run, "--batch-sizes", "1,4", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["runtime"] for r in rows] == ["torch fp32", "ONNX fp32", "ONNX int8"]
    assert all(r["ms at batch 1"] > 0 and r["images/s at batch 4"] > 0 and r["MB"] > 0 for r in rows)
    assert_user_error(cli("benchmark", run, "--batch-sizes", "0"), "--batch-sizes")
