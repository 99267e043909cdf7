"""Domain adaptation at test size on real digits (MNIST -> USPS): every method runs beside the
source-only baseline; the losses do what their math says; bad input gets one clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_user_error, make_class_folder, write_image
from transferlab.data import from_arrays
from transferlab.tasks.adapt import adapt
from transferlab.tasks.adapt.losses import (
    ConditionalDomainAdversarialLoss,
    CorrelationAlignmentLoss,
    DomainAdversarialLoss,
    GradientReversal,
)

FAST = {"epochs": 2, "iters_per_epoch": 15, "batch_size": 32}


@pytest.fixture(scope="module")
def digits(shared_data):
    d = np.load(shared_data / "digits-mnist-usps.npz")
    source = from_arrays(
        d["mnist_train_x"][:1500], d["mnist_train_y"][:1500], d["mnist_val_x"][:300], d["mnist_val_y"][:300]
    )
    target = from_arrays(d["usps_train_x"][:800], d["usps_train_y"][:800], d["usps_val_x"][:300], d["usps_val_y"][:300])
    return source, target


def test_every_method_runs_beside_source_only(digits, tmp_path):
    rows = adapt(*digits, methods=["joint", "dann", "cdan", "coral"], target_labels=2, out=tmp_path, **FAST)
    assert [r["method"] for r in rows] == ["source-only", "joint", "dann", "cdan", "coral"]
    assert all(0 <= r["target acc %"] <= 100 for r in rows)
    assert rows[0]["source val acc %"] > 25  # well above chance (10%) after 30 steps: it learnt the source
    saved = json.loads((tmp_path / "adapt.json").read_text())
    assert len(saved["rows"]) == 5 and (tmp_path / "report.html").is_file() and (tmp_path / "curves.png").is_file()


def test_seeds_give_mean_and_spread(digits, tmp_path):
    rows = adapt(*digits, methods=["coral"], seeds=[0, 1], out=tmp_path, **FAST)
    assert all(r["seeds"] == 2 for r in rows) and rows[1]["std"] >= 0


def test_gradient_reversal_flips_and_scales_the_gradient():
    layer = GradientReversal()
    layer.progress = 1.0
    x = torch.ones(3, requires_grad=True)
    layer(x).sum().backward()
    coeff = 2 / (1 + np.exp(-10)) - 1
    assert torch.allclose(x.grad, torch.full((3,), -coeff, dtype=torch.float32))


def test_alignment_losses_measure_the_domain_gap():
    torch.manual_seed(0)
    f = torch.randn(64, 8)
    coral = CorrelationAlignmentLoss()
    assert coral(f, f).item() == pytest.approx(0.0, abs=1e-7)
    assert coral(f, f * 3 + 1).item() > 1.0
    logits = torch.randn(64, 4)
    for loss in (DomainAdversarialLoss(8), ConditionalDomainAdversarialLoss(8, 4)):
        value = loss(f, f + 2, logits, logits)
        assert torch.isfinite(value) and value.item() > 0


def test_bad_input(tmp_path, cli):
    a = make_class_folder(tmp_path / "a", {"cat": 4, "dog": 4})
    b = make_class_folder(tmp_path / "b", {"cat": 4, "fox": 4})
    assert_user_error(cli("adapt", "--source", a, "--target", b), "different class sets", "only in target: fox")
    assert_user_error(cli("adapt", "--source", a, "--target", a, "--method", "mmd"), "unknown method 'mmd'")
    assert_user_error(cli("adapt", "--source", a, "--target", a, "--method", "joint"), "--target-labels")
    assert_user_error(cli("adapt", "--source", a, "--target", a, "--seeds", "x"), "not a list of integers")


def test_domains_of_different_sizes_and_channels_are_handled(tmp_path, cli):
    source = make_class_folder(tmp_path / "s", {"0": 6, "1": 6})
    for cls in ("0", "1"):
        for i in range(6):
            write_image(tmp_path / "t" / cls / f"{i}.png", (30, 30, 30) if cls == "0" else (220, 220, 220),
                        size=(16, 16), mode="L")  # fmt: skip
    options = ("--method", "dann", "--epochs", "1", "--iters-per-epoch", "3", "--batch-size", "4")
    code, stdout, err = cli("adapt", "--source", source, "--target", tmp_path / "t", *options, "--out", tmp_path / "o")
    assert code == 0, err
    assert "source-only" in stdout and "dann" in stdout and (tmp_path / "o" / "report.html").is_file()
