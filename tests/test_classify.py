"""`classify`: strategies, the training engine (resume, DDP, failures), reports, evaluate, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_user_error, make_class_folder
from transferlab import backbones
from transferlab.data import from_arrays
from transferlab.engine.checkpoint import load_checkpoint
from transferlab.errors import TrainingError, UsageError
from transferlab.tasks import classify

FAST = {"img_size": 32, "batch_size": 16, "epochs": 2, "warmup_epochs": 0.5, "devices": 1}


@pytest.fixture(scope="module")
def tiny():
    """Three colour-and-shape classes, 16 train + 8 val images each (real pictures, not noise)."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label in range(3):
        for _ in range(24):
            img = np.full((24, 24, 3), 30, np.uint8)
            img[..., label] = 200
            x, y = rng.integers(2, 12, size=2)
            img[y : y + 10, x : x + 10] = 255 if label != 1 else 0
            images.append(np.clip(img + rng.integers(0, 25, img.shape), 0, 255).astype(np.uint8))
            labels.append(label)
    x, y = np.stack(images), np.array(labels)
    order = np.arange(len(y)).reshape(3, 24)
    train, val = order[:, :16].ravel(), order[:, 16:].ravel()
    return from_arrays(x[train], y[train], x[val], y[val], classes=["red", "green", "blue"])


@pytest.mark.parametrize("strategy", ["linear", "full", "gradual", "llrd", "scratch"])
def test_every_strategy_trains_and_writes_a_complete_run(tiny, tmp_path, strategy):
    result = classify.fit(tiny, out=tmp_path / strategy, backbone="tf_efficientnet_lite0", strategy=strategy, **FAST)
    run = tmp_path / strategy
    for name in (
        "run.json",
        "model.safetensors",
        "checkpoints/last.safetensors",
        "metrics.csv",
        "curves.png",
        "confusion.png",
        "hardest.png",
        "report.html",
        "evaluation.json",
    ):
        assert (run / name).is_file(), name
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "src='http" not in html  # self-contained
    assert result.val_acc > 1 / 3 and result.metrics["images"] == 24  # better than chance on 3 classes
    meta = json.loads((run / "run.json").read_text())
    assert (
        meta["task"] == "classify" and meta["strategy"] == strategy and meta["class_names"] == ["red", "green", "blue"]
    )


def test_linear_probe_trains_only_the_head_on_cached_features(tiny, tmp_path):
    result = classify.fit(tiny, out=tmp_path / "lin", strategy="linear", lr=1e-2, **{**FAST, "epochs": 8})
    assert result.trainable_params == 1280 * 3 + 3
    trained = backbones.from_run(__import__("transferlab.runs", fromlist=["read_run"]).read_run(tmp_path / "lin")).model
    pretrained = backbones.create("tf_efficientnet_lite0").model
    assert torch.equal(trained.conv_stem.weight, pretrained.conv_stem.weight)  # body untouched
    assert result.val_acc > 0.9  # colours are easy for ImageNet features


def test_a_linear_probe_counts_the_last_smaller_batch_it_trains_on(tiny, tmp_path):
    """Cached features keep an epoch's last, smaller batch: 48 images in batches of 20 are 3 steps an
    epoch, and the schedule and the run's position count them (they once counted 2, so the cosine
    schedule reached its floor two thirds of the way through)."""
    classify.fit(tiny, out=tmp_path / "lin", strategy="linear", **{**FAST, "batch_size": 20})
    state = load_checkpoint(tmp_path / "lin" / "checkpoints" / "last.safetensors")
    assert state["step"] == 6 and state["progress"] == 6


def test_gradual_unfreezes_stage_by_stage(tiny, tmp_path):
    result = classify.fit(tiny, out=tmp_path / "g", strategy="gradual", **{**FAST, "epochs": 9})
    trainable = [row["trainable"] for row in result.history]
    assert trainable[0] == 1280 * 3 + 3  # head first
    assert trainable == sorted(trainable) and trainable[-1] > 3_000_000  # then everything


def test_strategy_learning_rates():
    from transferlab.tasks.classify.strategies import STRATEGIES

    options = {"body_lr_mult": 0.1, "layer_decay": 0.5}
    assert STRATEGIES["full"].lr_scales(4, options) == [0.1, 0.1, 0.1, 1.0]
    assert STRATEGIES["llrd"].lr_scales(4, options) == [0.125, 0.25, 0.5, 1.0]
    assert [STRATEGIES["gradual"].trainable_groups(e, 9, 9) for e in (0, 1, 4, 8)] == [1, 2, 5, 9]


def test_l2sp_is_the_stated_penalty():
    from transferlab.tasks.classify.l2sp import L2SP

    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    reg = L2SP(model, {"0.weight", "0.bias"}, alpha=0.2, beta=0.5)
    assert reg(model).item() == pytest.approx(0.5 * 0.5 * sum(p.pow(2).sum().item() for p in model[1].parameters()))
    with torch.no_grad():
        model[0].weight.add_(1.0)
    expected = 0.5 * 0.2 * 9 + 0.5 * 0.5 * sum(p.pow(2).sum().item() for p in model[1].parameters())
    assert reg(model).item() == pytest.approx(expected, rel=1e-5)


def test_l2sp_pulls_the_body_toward_its_pretrained_weights(tiny, tmp_path):
    """The same run with a strong L2-SP ends measurably closer to the pretrained body than without."""
    from safetensors.torch import load_file

    from transferlab import backbones

    model = backbones.create("tf_efficientnet_lite0", num_classes=3).model
    start = {k: v.detach().clone() for k, v in model.named_parameters()}  # parameters, not BN statistics
    options = {**FAST, "strategy": "full", "lr": 3e-3, "body_lr_mult": 1.0, "epochs": 2}

    def drift(l2sp: float) -> float:
        run = classify.fit(tiny, out=tmp_path / f"l2sp-{l2sp}", l2sp=l2sp, **options).run_dir
        weights = load_file(run / "model.safetensors")
        body = [k for k in start if k.startswith(("conv_stem", "blocks"))]
        return sum((weights[k] - start[k]).pow(2).sum().item() for k in body)

    free, held = drift(0.0), drift(10.0)
    assert held < 0.7 * free, (held, free)


def test_resume_continues_exactly(tiny, tmp_path):
    """Stopped after epoch 1 and resumed == trained straight through (weights, optimizer, RNG, schedule)."""
    options = {**FAST, "epochs": 3, "backbone": "resnet10t", "strategy": "scratch", "drop_rate": 0.3, "mixup": 0.4}
    straight = classify.fit(tiny, out=tmp_path / "straight", **options)
    classify.fit(tiny, out=tmp_path / "stopped", stop_after=1, **options)
    assert load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.safetensors")["epoch"] == 1
    resumed = classify.fit(tiny, resume=tmp_path / "stopped")
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "last.safetensors")
    b = load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.safetensors")
    for key in a["model"]:
        assert torch.allclose(a["model"][key].float(), b["model"][key].float(), atol=1e-6), key
    assert [r["val_acc"] for r in straight.history] == [r["val_acc"] for r in resumed.history]


def test_resume_with_other_data_is_refused(tiny, tmp_path, cli):
    classify.fit(tiny, out=tmp_path / "run", stop_after=1, **{**FAST, "backbone": "resnet10t", "strategy": "scratch"})
    make_class_folder(tmp_path / "other", {"red": 6, "green": 6, "blue": 6})
    result = cli("classify", tmp_path / "other", "--resume", tmp_path / "run")
    assert_user_error(result, "differs from the data the run was started on")


def test_resume_a_run_of_another_task(tmp_path, cli):
    from transferlab.engine.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "gan" / "checkpoints" / "last.safetensors", {"task": "gan", "options": {}})
    assert_user_error(cli("classify", "digits", "--resume", tmp_path / "gan"), "'gan' run, not a classify run")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch, cli):
    from transferlab.engine import session as session_module
    from transferlab.tasks.classify.train import ClassifyRecipe

    original = ClassifyRecipe.label_loss

    def poisoned(self, logits, target):
        loss = original(self, logits, target)
        return loss * float("nan") if self.step >= 4 else loss

    monkeypatch.setattr(ClassifyRecipe, "label_loss", poisoned)
    monkeypatch.setattr(session_module, "CHECKPOINT_SPACING_SECONDS", 0.0)  # every epoch's end written
    folder = make_class_folder(tmp_path / "d", {"a": 12, "b": 12})
    args = [
        "--backbone",
        "resnet10t",
        "--strategy",
        "scratch",
        "--img-size",
        "32",
        "--batch-size",
        "8",
        "--epochs",
        "5",
    ]
    code, _, err = cli("classify", folder, *args, "--out", tmp_path / "run")
    assert (
        code == 1
        and "error: training diverged: the loss became non-finite at step 5 (epoch 3)" in err
        and "--resume" in err
        and "Traceback" not in err
    )
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")["epoch"] == 2


def test_out_of_memory_says_what_to_do(tiny, tmp_path, monkeypatch):
    from transferlab.tasks.classify.train import ClassifyRecipe

    def oom(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ClassifyRecipe, "train_step", oom)
    with pytest.raises(TrainingError, match="out of memory at batch size 16") as info:
        classify.fit(tiny, out=tmp_path / "oom", **FAST)
    assert "--batch-size 8" in info.value.remedy


def test_patience_stops_a_run_whose_validation_stops_improving(tiny, tmp_path):
    """A rate too small to move the weights: the first scored epoch is the best, the next one
    without a better score ends the run, which is whole (report written, complete result)."""
    result = classify.fit(
        tiny, out=tmp_path / "run", strategy="linear", **{**FAST, "epochs": 6, "lr": 1e-12, "patience": 1}
    )
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[1:]
    assert len(rows) == 2 and result.best_epoch == 1
    assert (tmp_path / "run" / "report.html").is_file()
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.safetensors")
    assert state["stopped_early"] and state["epoch"] == 2


def test_unknown_strategy_and_backbone(cli):
    assert_user_error(cli("classify", "digits", "--strategy", "magic"), "unknown strategy 'magic'", "linear")
    assert_user_error(cli("classify", "digits", "--backbone", "resnet999"), "unknown backbone 'resnet999'")
    assert_user_error(cli("classify", "digits", "--augmix", "--strategy", "linear"), "features computed once",
                      "--strategy frozen")  # fmt: skip
    with pytest.raises(UsageError, match="--epochs"):
        classify.fit("digits", epochs=0)


def test_compare_writes_one_table_and_report(tmp_path, cli):
    folder = make_class_folder(tmp_path / "d", {"a": 10, "b": 10, "c": 10})
    code, out, err = cli(
        "classify",
        folder,
        "--compare",
        "scratch,linear",
        "--img-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        tmp_path / "cmp",
    )
    assert code == 0, err
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    assert [r["strategy"] for r in rows] == ["scratch", "linear"]
    assert {"val accuracy", "macro F1", "wall s", "trainable params", "best epoch"} <= set(rows[0])
    html = (tmp_path / "cmp" / "report.html").read_text()
    assert "scratch" in html and "linear" in html and "data:image/png;base64," in html
    assert "report:" in out


def test_evaluate_and_predict_with_a_trained_run(tiny, tmp_path, cli):
    classify.fit(tiny, out=tmp_path / "run", strategy="linear", lr=1e-2, **{**FAST, "epochs": 6})
    folder = make_class_folder(tmp_path / "eval", {"red": 3, "green": 3, "blue": 3})
    code, out, _ = cli("evaluate", tmp_path / "run", folder, "--json")
    metrics = json.loads(out)
    assert code == 0 and metrics["images"] == 9 and len(metrics["per_class"]) == 3 and "most_confused" in metrics
    assert (tmp_path / "run" / "evaluations" / "eval" / "confusion.png").is_file()
    code, out, _ = cli("predict", folder / "red", "--checkpoint", tmp_path / "run", "--json")
    assert code == 0 and {p["predictions"][0]["label"] for p in json.loads(out)} <= {"red", "green", "blue"}
    make_class_folder(tmp_path / "alien", {"purple": 2, "red": 2})
    assert_user_error(cli("evaluate", tmp_path / "run", tmp_path / "alien"), "the model does not know: purple")


def test_predict_evaluate_and_onnx_give_the_same_logits(tiny, tmp_path, cli):
    """One evaluation preprocessing: the same image files through `predict`, `evaluate` (the
    in-memory loader) and the exported ONNX model give the same logits (1e-4)."""
    import onnxruntime as ort
    from PIL import Image

    from transferlab.data import load_labeled
    from transferlab.data.transforms import eval_transform
    from transferlab.runs import read_run
    from transferlab.tasks.classify.evaluation import run_logits
    from transferlab.tasks.predict import predict

    classify.fit(tiny, out=tmp_path / "run", **{**FAST, "backbone": "resnet10t", "strategy": "scratch", "epochs": 1})
    code, _, err = cli("export", tmp_path / "run", "--format", "onnx")
    assert code == 0, err
    rng = np.random.default_rng(1)
    for i, (w, h) in enumerate([(40, 24), (23, 57), (32, 32), (90, 61)]):  # resize and crop both matter
        name = ["red", "green", "blue"][i % 3]
        (tmp_path / "files" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / "files" / name / f"{i}.png")
    run = read_run(tmp_path / "run")
    images, _ = load_labeled(tmp_path / "files")
    evaluated, _ = run_logits(run, images, torch.device("cpu"))
    predicted = predict(list(images.paths), checkpoint=tmp_path / "run", topk=3)
    probabilities = torch.zeros_like(evaluated)
    for row, prediction in zip(probabilities, predicted):
        for index, _, p in prediction.top:
            row[index] = p
    np.testing.assert_allclose(probabilities.numpy(), evaluated.softmax(-1).numpy(), atol=1e-5)
    transform = eval_transform(run.preprocessing)
    x = torch.stack([transform(Image.open(path).convert("RGB")) for path in images.paths])
    session = ort.InferenceSession(str(tmp_path / "run" / "model.onnx"))
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], evaluated.numpy(), atol=1e-4)
    assert cli("export", tmp_path / "run", "--format", "torchscript")[0] == 0
    assert_user_error(cli("export", tmp_path / "run", "--format", "tflite"), "unknown export format")


def test_streaming_path_with_accumulation_and_ema_resumes_exactly(tiny, tmp_path):
    """The DataLoader path (datasets too big to hold), gradient accumulation with a partial last
    step, and EMA weights: stopped and resumed equals straight through."""
    options = {**FAST, "epochs": 2, "backbone": "resnet10t", "strategy": "scratch", "resident": False, "workers": 0}
    options.update(accumulate=2, ema=0.9, batch_size=12)  # 48 images -> 4 batches, 2 steps a epoch
    straight = classify.fit(tiny, out=tmp_path / "a", **options)
    classify.fit(tiny, out=tmp_path / "b", stop_after=1, **options)
    resumed = classify.fit(tiny, resume=tmp_path / "b")
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.safetensors")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.safetensors")
    assert a["step"] == b["step"] == 4
    for key in a["ema"]:
        assert torch.allclose(a["ema"][key].float(), b["ema"][key].float(), atol=1e-6), key
    assert straight.val_acc == pytest.approx(resumed.val_acc)
