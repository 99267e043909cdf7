"""`distill`: the losses' math, a student trained from a teacher run (with unlabelled images), its
run and report, data-parallel runs, and every bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import assert_user_error, make_class_folder, write_image
from transferlab.tasks import classify, distill
from transferlab.tasks.distill.losses import DIST, METHODS, HintonKD
from zygote import run_cli

FAST = {"img_size": 32, "batch_size": 16, "epochs": 2, "warmup_epochs": 0.5, "devices": 1}
STUDENT = {"backbone": "resnet10t", "strategy": "scratch", "lr": 3e-3}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return make_class_folder(tmp_path_factory.mktemp("data") / "shapes", {"red": 12, "green": 12, "blue": 12})


@pytest.fixture(scope="module")
def teacher(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "lite0"
    classify.fit(str(folder), out=out, backbone="tf_efficientnet_lite0", **{**FAST, "epochs": 3})
    return out


def test_hinton_kd_is_the_softened_kl_times_t_squared():
    student, teacher = torch.randn(6, 5), torch.randn(6, 5)
    t = 3.0
    p = F.softmax(teacher / t, 1)
    expected = (p * (p.log() - F.log_softmax(student / t, 1))).sum(1).mean() * t * t
    assert HintonKD(t)(student, teacher).item() == pytest.approx(expected.item(), rel=1e-5)
    assert HintonKD(t)(teacher, teacher).item() == pytest.approx(0.0, abs=1e-6)


def test_dist_matches_rankings_not_values():
    teacher = torch.randn(8, 6)
    assert DIST()(teacher.clone(), teacher).item() == pytest.approx(0.0, abs=1e-5)
    assert DIST()(-teacher, teacher).item() > 1.0  # reversed rankings: correlation about -1
    student = torch.randn(8, 6, requires_grad=True)
    DIST()(student, teacher).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert set(METHODS) == set(__import__("transferlab.options.distill", fromlist=["METHODS"]).METHODS)


def test_teacher_input_turns_the_students_pixels_into_the_teachers():
    from transferlab.tasks.distill.train import TeacherInput

    student = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 32, 32)}
    teacher = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "input_size": (3, 48, 48)}
    pixels = torch.rand(2, 3, 32, 32)
    seen = TeacherInput(student, teacher)((pixels - 0.5) / 0.5)
    resized = F.interpolate(pixels, size=(48, 48), mode="bilinear", antialias=True, align_corners=False)
    expected = (resized - torch.tensor(teacher["mean"]).view(1, 3, 1, 1)) / torch.tensor(teacher["std"]).view(
        1, 3, 1, 1
    )
    assert seen.shape == (2, 3, 48, 48) and torch.allclose(seen, expected, atol=1e-5)
    same = TeacherInput(student, student)
    x = torch.randn(2, 3, 32, 32)
    assert same(x) is x


def test_a_distilled_student_is_an_ordinary_classifier_run_beside_its_teacher(folder, teacher, tmp_path, cli):
    out = tmp_path / "student"
    code, stdout, err = cli(
        "distill", teacher, folder, "--student", "resnet10t", "--strategy", "scratch", "--img-size", "32",
        "--epochs", "2", "--batch-size", "16", "--devices", "1", "--out", out,
    )  # fmt: skip
    assert code == 0, err
    meta = json.loads((out / "run.json").read_text())
    assert meta["task"] == "distill" and meta["model"]["kind"] == "timm-classifier"
    assert meta["options"]["teacher"] == str(teacher) and meta["model"]["backbone"] == "resnet10t"
    rows = json.loads((out / "distillation.json").read_text())["rows"]
    assert [r["backbone"] for r in rows] == ["tf_efficientnet_lite0", "resnet10t"]
    assert all(0 <= r["accuracy"] <= 1 and r["latency ms (batch 1, CPU)"] > 0 and r["parameters"] > 0 for r in rows)
    assert "Teacher and student" in (out / "report.html").read_text() and "teacher:" in stdout
    scores = classify.evaluate(out, str(folder))  # evaluate, predict, export and serve take it as a classifier
    assert scores["images"] == 36


def test_unlabelled_images_are_taught_by_the_teacher_alone(folder, teacher, tmp_path):
    extra = tmp_path / "unlabelled"
    rng = np.random.default_rng(1)
    for i in range(10):
        write_image(extra / f"u{i}.png", tuple(int(c) for c in rng.integers(0, 255, 3)))
    result = distill.train(teacher, str(folder), out=tmp_path / "s", unlabelled=str(extra), **FAST, **STUDENT)
    assert "+ 10 unlabelled" in json.loads((tmp_path / "s" / "run.json").read_text())["data"]
    history = result.history
    assert all(0 <= row["train_acc"] <= 1 for row in history)  # counted over labelled images only

    from transferlab.tasks.distill.train import DistillRecipe

    recipe = object.__new__(DistillRecipe)  # the loss alone, on a stand-in teacher
    recipe.opts = distill.DistillOptions(teacher="t", alpha=0.3)
    recipe.distiller, recipe.l2sp = HintonKD(4.0), None
    teacher_logits = torch.randn(4, 3)
    recipe.teacher_logits = lambda x: teacher_logits
    logits = torch.randn(4, 3)
    unlabelled = recipe.training_loss(torch.zeros(4), logits, torch.full((4,), -1))
    assert unlabelled.item() == pytest.approx(0.3 * HintonKD(4.0)(logits, teacher_logits).item(), rel=1e-6)
    mixed = recipe.training_loss(torch.zeros(4), logits, torch.tensor([0, -1, 2, -1]))
    ce = F.cross_entropy(logits[[0, 2]], torch.tensor([0, 2]), label_smoothing=0.1)
    assert mixed.item() == pytest.approx(unlabelled.item() + 0.7 * ce.item(), rel=1e-5)
    soft = torch.softmax(torch.randn(4, 3), 1)  # mixup's targets: every image labelled
    mixup = recipe.training_loss(torch.zeros(4), logits, soft)
    assert mixup.item() == pytest.approx(unlabelled.item() + 0.7 * F.cross_entropy(logits, soft).item(), rel=1e-5)


def test_teacher_classes_in_another_order_are_reordered(folder, teacher, tmp_path):
    from transferlab.tasks.distill.train import teacher_order

    order = teacher_order(["red", "green", "blue"], ["blue", "red", "green"], "t")
    assert order.tolist() == [2, 0, 1]
    assert teacher_order(["a", "b"], ["a", "b"], "t") is None


def test_resume_continues_exactly(folder, teacher, tmp_path):
    options = {**FAST, **STUDENT, "epochs": 2}
    straight = distill.train(teacher, str(folder), out=tmp_path / "a", **options)
    distill.train(teacher, str(folder), out=tmp_path / "b", stop_after=1, **options)
    resumed = distill.train(None, str(folder), resume=tmp_path / "b")
    assert resumed.val_acc == pytest.approx(straight.val_acc)
    from safetensors.torch import load_file

    a, b = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


@pytest.mark.heavy(20)
def test_two_processes_train_the_same_student_as_one(folder, teacher, tmp_path, cli):
    """Each process's teacher teaches its share of every batch; the averaged gradients equal one
    process's (trained in this process; a frozen body: BatchNorm statistics are not per process)."""
    common = [str(teacher), str(folder), "--student", "tf_efficientnet_lite0", "--strategy", "frozen", "--img-size",
              "32", "--epochs", "2", "--batch-size", "8", "--lr", "0.01", "--accelerator", "cpu"]  # fmt: skip
    code, _, err = cli("distill", *common, "--devices", "1", "--out", tmp_path / "d1")
    assert code == 0, err
    env = {**os.environ, "TRANSFERLAB_QUIET": "1"}
    done = run_cli(["distill", *common, "--devices", "2", "--out", tmp_path / "d2"], env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from safetensors.torch import load_file

    one, two = (load_file(str(tmp_path / f"d{n}" / "model.safetensors")) for n in (1, 2))
    assert torch.allclose(one["classifier.weight"], two["classifier.weight"], atol=1e-5)
    assert not torch.allclose(
        one["classifier.weight"], load_file(str(teacher / "model.safetensors"))["classifier.weight"]
    )


def test_bad_inputs_get_cause_and_remedy(folder, teacher, tmp_path, cli):
    assert_user_error(cli("distill", tmp_path / "nowhere", folder), "is not a transferlab run")
    other = make_class_folder(tmp_path / "other", {"cat": 6, "dog": 6})
    assert_user_error(cli("distill", teacher, other, "--img-size", "32"), "other classes than DATA's", "cat, dog")
    assert_user_error(cli("distill", teacher, folder, "--student", "no_such_net"), "no_such_net")
    assert_user_error(cli("distill", teacher, folder, "--unlabelled", folder, "--mixup", "0.2"), "--mixup/--cutmix")
    assert_user_error(cli("distill", teacher, folder, "--alpha", "2"), "--alpha 2")
    assert_user_error(cli("distill", teacher, folder, "--strategy", "linear"), "features computed once")
    assert_user_error(cli("distill", teacher), "TEACHER_RUN and DATA are needed")
    from transferlab.engine.checkpoint import save_checkpoint

    gan = tmp_path / "gan"
    save_checkpoint(gan / "checkpoints" / "last.safetensors", {"task": "gan", "options": {}})
    (gan / "run.json").write_text(json.dumps({"format": "transferlab-run", "format_version": 1, "task": "gan",
                                              "model": {"kind": "gan"}}))  # fmt: skip
    assert_user_error(cli("distill", gan, folder), "gan")
