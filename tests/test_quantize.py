"""`export --quantize` (int8 ONNX, its held-out check) and `benchmark` (torch / ONNX fp32 / int8)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error, make_class_folder
from transferlab.data import from_arrays
from transferlab.tasks import classify
from transferlab.tasks.quantize import onnx_session

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
    assert made.is_file() and (run / "model.onnx").is_file() and f"{report['fp32_score']:.2%}" in out
    assert report["images"] == 9 and report["calibration_images"] == 20 and "held-out" in report["measured_on"]
    expected = 100 * (report["fp32_score"] - report["int8_score"])
    assert report["drop_points"] == pytest.approx(expected, abs=0.01) and 0 <= report["agreement"] <= 1
    assert made.stat().st_size < (run / "model.onnx").stat().st_size / 2.5  # int8 weights: about a quarter

    session = onnx_session(made)  # a QDQ graph that ONNX Runtime runs
    logits = session.run(None, {session.get_inputs()[0].name: np.zeros((2, 3, 64, 64), np.float32)})[0]
    assert logits.shape == (2, 3)


def test_shape_arithmetic_stays_in_float(run, cli, monkeypatch, tmp_path):
    """Lite0's TF-style padding computes its pads from the input's shape: unfolded, those nodes
    are found (and left in float); export folds them, so none is left to quantize."""
    import onnx

    from transferlab.tasks import export
    from transferlab.tasks.onnx_graph import shape_arithmetic

    monkeypatch.setattr(export, "fold_fixed_shapes", lambda path: 0)
    export.export(run, "onnx", tmp_path / "unfolded.onnx")
    graph = onnx.load(str(tmp_path / "unfolded.onnx")).graph
    left = set(shape_arithmetic(tmp_path / "unfolded.onnx"))
    kinds = {node.op_type for node in graph.node if node.name in left}
    assert "Shape" in kinds and not kinds & {"Conv", "Gemm", "Pad"}
    monkeypatch.undo()

    assert cli("export", run, "--quantize", "int8", "--calibration", "10", "--force")[0] == 0
    folded = onnx.load(str(run / "model.onnx")).graph
    constants = {tensor.name for tensor in folded.initializer}
    pads = [node for node in folded.node if node.op_type == "Pad"]
    assert pads and all(node.input[1] in constants for node in pads) and not shape_arithmetic(run / "model.onnx")
    unfolded, refolded = onnx_session(tmp_path / "unfolded.onnx"), onnx_session(run / "model.onnx")
    for batch in (1, 5):  # the same logits, and the batch still free
        x = np.random.default_rng(batch).standard_normal((batch, 3, 64, 64)).astype(np.float32)
        np.testing.assert_allclose(refolded.run(None, {"images": x})[0], unfolded.run(None, {"images": x})[0],
                                   rtol=1e-5, atol=1e-5)  # fmt: skip


def test_folding_keeps_what_the_batch_decides(tmp_path):
    """Shape arithmetic on the image size becomes constants; on the batch size it stays computed."""
    import onnx
    import torch

    from transferlab.tasks.export import IMAGES_TO_LOGITS, _export_onnx

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.nn.functional.pad(x, [0, x.shape[-1] % 5, 0, x.shape[-2] % 3])  # the image size's
            return x.reshape(x.shape[0], -1).sum(1, keepdim=True) * x.shape[0]  # the batch's

    _export_onnx(Net(), torch.zeros(2, 3, 7, 9), tmp_path / "net.onnx", IMAGES_TO_LOGITS)
    graph = onnx.load(str(tmp_path / "net.onnx")).graph
    (pad,) = [node for node in graph.node if node.op_type == "Pad"]
    assert pad.input[1] in {tensor.name for tensor in graph.initializer}  # the image size's: a constant
    assert any(node.op_type == "Shape" for node in graph.node)  # the batch's arithmetic is left
    session = onnx_session(tmp_path / "net.onnx")
    for batch in (1, 4):
        x = torch.randn(batch, 3, 7, 9)
        np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], Net()(x).numpy(), rtol=1e-5)


def test_dynamic_quantization_needs_no_calibration(run, cli):
    code, _, err = cli("export", run, "--quantize", "dynamic", "--max-drop", "100")
    assert code == 0, err
    assert json.loads((run / "model.dynamic-int8.quantization.json").read_text())["calibration_images"] == 0


def test_a_drop_past_max_drop_is_refused_and_nothing_written(run, cli, monkeypatch, tmp_path):
    from transferlab.tasks.classify import quantization

    monkeypatch.setattr(quantization, "scores", lambda *a: {"fp32": 0.9, "int8": 0.8, "agreement": 0.85, "images": 9})
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

    save_run(tmp_path / "gan", task="gan", state_dict={}, model={"kind": "gan"}, class_names=[], preprocessing={})
    assert_user_error(cli("export", tmp_path / "gan", "--quantize", "int8"), "holds a generator and its discriminator",
                      "a semantic segmentation network")  # fmt: skip


def test_benchmark_times_torch_and_both_onnx_models(run, cli):
    cli("export", run, "--quantize", "int8", "--calibration", "10", "--force")
    code, out, err = cli("benchmark", run, "--batch-sizes", "1,4", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["runtime"] for r in rows] == ["torch fp32", "ONNX fp32", "ONNX int8"]
    assert all(r["ms at batch 1"] > 0 and r["images/s at batch 4"] > 0 and r["MB"] > 0 for r in rows)
    assert_user_error(cli("benchmark", run, "--batch-sizes", "0"), "--batch-sizes")


def test_a_segmenter_is_quantized_checked_by_miou_and_benchmarked(tmp_path, cli):
    from conftest import write_segmentation_set
    from transferlab.tasks import segment
    from transferlab.tasks.segment.data import load_segmentation

    data = write_segmentation_set(tmp_path / "d", 12)
    run = segment.train(data, out=tmp_path / "seg", img_size=64, epochs=2, batch_size=4, width=8).run_dir
    assert_user_error(cli("export", run, "--quantize", "int8"), "does not record its DATA folder", "--data DATA")
    assert_user_error(cli("export", run, "--quantize", "int8", "--data", data, "--calibration", tmp_path),
                      "calibrates on DATA's training images", "--calibration N")  # fmt: skip
    code, out, err = cli("export", run, "--quantize", "int8", "--data", data, "--calibration", "6", "--max-drop", "100")
    assert code == 0, err
    report = json.loads((run / "model.int8.quantization.json").read_text())
    assert report["metric"] == "mIoU" and "mIoU on" in out and report["calibration_images"] == 6
    held_out = len(load_segmentation(data).val)  # split as the run's training split it
    assert report["images"] == held_out > 0 and "at 64 x 64" in report["measured_on"]
    assert 0 < report["fp32_score"] <= 1 and 0 <= report["agreement"] <= 1
    assert report["drop_points"] == pytest.approx(100 * (report["fp32_score"] - report["int8_score"]), abs=0.01)
    logits = onnx_session(run / "model.int8.onnx").run(None, {"images": np.zeros((3, 3, 64, 64), np.float32)})[0]
    assert logits.shape == (3, len(json.loads((run / "run.json").read_text())["class_names"]), 64, 64)
    code, out, err = cli("benchmark", run, "--batch-sizes", "1,2", "--json")
    assert code == 0, err
    assert [row["runtime"] for row in json.loads(out)] == ["torch fp32", "ONNX fp32", "ONNX int8"]


def test_a_detector_is_quantized_checked_by_map_and_faster_rcnn_refused(tmp_path, cli):
    from conftest import write_detection_set
    from transferlab.runs import save_run
    from transferlab.tasks import detect
    from transferlab.tasks.detect.data import load_detection

    data = write_detection_set(tmp_path / "d", 12)
    run = detect.train(data, out=tmp_path / "det", img_size=64, epochs=2, batch_size=4, width=64).run_dir
    assert_user_error(cli("export", run, "--quantize", "int8"), "does not record its DATA folder", "--data DATA")
    code, out, err = cli("export", run, "--quantize", "int8", "--data", data, "--calibration", "5", "--max-drop", "100")
    assert code == 0, err
    report = json.loads((run / "model.int8.quantization.json").read_text())
    held_out = len(load_detection(data).val)
    assert report["metric"] == "mAP" and report["images"] == held_out > 0 and report["calibration_images"] == 5
    assert 0 <= report["int8_score"] <= 1 and 0 <= report["agreement"] <= 1 and "mAP on" in out
    int8 = onnx_session(run / "model.int8.onnx")  # one image of another size: boxes, scores, labels
    boxes, scores, labels = int8.run(None, {"image": np.random.default_rng(0).random((3, 80, 100), np.float32)})
    assert boxes.shape[1:] == (4,) and len(boxes) == len(scores) == len(labels)
    import onnx

    fp32 = onnx.load(str(run / "model.onnx")).graph
    convolutions = len({node.input[1] for node in fp32.node if node.op_type == "Conv"})  # heads share across levels
    int8_weights = [t for t in onnx.load(str(run / "model.int8.onnx")).graph.initializer
                    if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4]  # fmt: skip
    assert len(int8_weights) == convolutions  # every convolution's weights in int8
    assert_user_error(cli("benchmark", run), "networks of image batches")
    save_run(tmp_path / "frcnn", task="detect", state_dict={}, model={"kind": "detector", "detector": "fasterrcnn",
             "img_size": 64}, class_names=["a"], preprocessing={})  # fmt: skip
    assert_user_error(cli("export", tmp_path / "frcnn", "--quantize", "int8", "--data", data),
                      "crashes running an int8 fasterrcnn", "--detector fcos")  # fmt: skip


@pytest.mark.parametrize("name, size, pads", [("vit_tiny_patch16_224", 224, 0), ("tf_mobilenetv3_small_100", 96, 5)])
def test_folded_exports_answer_as_torch_at_every_batch_size(name, size, pads, tmp_path):
    """A transformer's reshapes depend on the batch and stay computed; a TF-style network's pads
    depend on the image size and are folded (its five stride-2 convolutions): both answer as torch
    does at batch sizes never probed."""
    import onnx
    import timm
    import torch

    from transferlab.tasks.export import IMAGES_TO_LOGITS, _export_onnx

    model = timm.create_model(name, pretrained=False, num_classes=5).eval()
    with torch.no_grad():
        _export_onnx(model, torch.randn(2, 3, size, size), tmp_path / "m.onnx", IMAGES_TO_LOGITS)
    session = onnx_session(tmp_path / "m.onnx")
    for batch in (2, 5):
        x = torch.randn(batch, 3, size, size)
        with torch.no_grad():
            np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], model(x).numpy(), atol=1e-5)
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    constant = {tensor.name for tensor in graph.initializer}
    assert sum(node.op_type == "Pad" and node.input[1] in constant for node in graph.node) == pads


def test_a_stopped_shape_inference_falls_back_and_litters_no_folder(tmp_path, monkeypatch):
    """Where ONNX Runtime's symbolic shape inference stops, it saves a copy of the model into the
    working folder and raises; the graph is then prepared without it, and the user's folder stays clean."""
    from transferlab.tasks.quantize import _prepare

    asked = []

    def stopping(source: str, target: str, auto_merge: bool = False, skip_symbolic_shape: bool = False) -> None:
        asked.append(skip_symbolic_shape)
        assert Path(source).is_file()
        if not skip_symbolic_shape:
            Path("sym_shape_infer_temp.onnx").write_bytes(b"debug copy")
            raise Exception("Incomplete symbolic shape inference")
        Path(target).write_bytes(b"prepared")

    (tmp_path / "user").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "user" / "model.onnx").write_bytes(b"model")
    monkeypatch.chdir(tmp_path / "user")
    _prepare(Path("model.onnx"), tmp_path / "work" / "prepared.onnx", True, stopping)
    assert asked == [False, True] and (tmp_path / "work" / "prepared.onnx").read_bytes() == b"prepared"
    assert sorted(p.name for p in (tmp_path / "user").iterdir()) == ["model.onnx"]


def test_a_graph_onnx_runtime_cannot_run_is_left_as_exported(tmp_path):
    """Folding runs the graph in ONNX Runtime; an op it lacks (a model for another runtime) leaves
    the file untouched instead of failing the export. Without that op, the same value is folded."""
    import onnx
    from onnx import TensorProto, helper

    from transferlab.tasks.onnx_graph import fold_fixed_shapes

    def graph_file(name: str, unknown: bool) -> Path:
        nodes = [
            helper.make_node("Shape", ["images"], ["shape"], name="shape"),
            helper.make_node("Gather", ["shape", "two"], ["height"], name="height"),  # the image size's
            helper.make_node("Cast", ["height"], ["scale"], name="cast", to=TensorProto.FLOAT),
            helper.make_node("Mul", ["images", "scale"], ["scaled"], name="mul"),
            helper.make_node("Unknown", ["scaled"], ["logits"], name="elsewhere", domain="org.example")
            if unknown
            else helper.make_node("Identity", ["scaled"], ["logits"], name="same"),
        ]
        graph = helper.make_graph(
            nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, 4, 4])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
            [helper.make_tensor("two", TensorProto.INT64, [], [2])],
        )  # fmt: skip
        opsets = [helper.make_opsetid("", 17), helper.make_opsetid("org.example", 1)]
        onnx.save(helper.make_model(graph, opset_imports=opsets), tmp_path / name)
        return tmp_path / name

    assert fold_fixed_shapes(graph_file("runs.onnx", unknown=False)) == 1
    lacking = graph_file("lacks.onnx", unknown=True)
    before = lacking.read_bytes()
    assert fold_fixed_shapes(lacking) == 0 and lacking.read_bytes() == before


def test_calibration_and_scoring_show_progress_and_nothing_of_onnx_runtime(run, cli, monkeypatch, tmp_path):
    monkeypatch.delenv("TRANSFERLAB_QUIET")
    monkeypatch.setenv("TRANSFERLAB_PROGRESS_SECONDS", "0")  # a plain line at every step (no terminal here)
    code, out, err = cli("export", run, "--quantize", "int8", "--calibration", "20", "-o", tmp_path / "m.onnx",
                         "--force")  # fmt: skip
    assert code == 0, err
    assert "calibrating: 3/3" in err and "scoring fp32 and int8: 1/1" in err  # 20 images in batches of 8; 9 held out
    assert "Collecting tensor data" not in out + err and "Finding optimal threshold" not in out + err
