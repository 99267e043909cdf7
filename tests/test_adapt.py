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
    assert all(10 <= r["target acc %"] <= 100 for r in rows)  # USPS digits are read above chance (10%)
    assert rows[0]["source val acc %"] > 25  # well above chance (10%) after 30 steps: it learnt the source
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert len(saved["rows"]) == 5 and (tmp_path / "report.html").is_file() and (tmp_path / "curves.png").is_file()


def test_seeds_give_mean_and_spread(digits, tmp_path):
    rows = adapt(*digits, methods=["coral"], seeds=[0, 1], out=tmp_path, **FAST)
    assert all(r["seeds"] == 2 for r in rows)
    for row in rows:  # the spread is the sample standard deviation of the two seeds' accuracies
        runs = [json.loads((tmp_path / f"{row['method']}-seed{s}" / "run.json").read_text()) for s in (0, 1)]
        accs = [r["metrics"]["target_acc"] * 100 for r in runs]
        assert row["std"] == pytest.approx(float(np.std(accs, ddof=1)), abs=0.01) and accs[0] != accs[1]


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


def test_dann_and_cdan_losses_are_their_formulas_on_a_fixed_input():
    """With a linear discriminator of known weights, DANN is the mean BCE of source-as-1 and
    target-as-0, and CDAN+E the same on f (x) softmax(logits), weighted by 1 + exp(-H) per domain."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    f_s, f_t = torch.randn(6, 3), torch.randn(6, 3) + 1
    logits_s, logits_t = torch.randn(6, 2) * 3, torch.randn(6, 2)
    bce = lambda z, y: F.softplus(-z) if y == 1 else F.softplus(z)  # noqa: E731 - BCE with logits, by hand

    dann = DomainAdversarialLoss(3)
    dann.discriminator = torch.nn.Linear(3, 1)
    w, b = dann.discriminator.weight.detach()[0], dann.discriminator.bias.item()
    expected = torch.cat([bce(f_s @ w + b, 1), bce(f_t @ w + b, 0)]).mean()
    assert dann(f_s, f_t).item() == pytest.approx(expected.item(), rel=1e-6)

    cdan = ConditionalDomainAdversarialLoss(3, 2)
    cdan.discriminator = torch.nn.Linear(6, 1)
    w, b = cdan.discriminator.weight.detach()[0], cdan.discriminator.bias.item()
    terms, weights = [], []
    for f, logits, label in ((f_s, logits_s, 1), (f_t, logits_t, 0)):
        g = logits.softmax(1)
        h = (g[:, :, None] * f[:, None, :]).flatten(1)
        entropy = -(g * (g + 1e-5).log()).sum(1)
        weight = 1 + torch.exp(-entropy)
        terms.append(bce(h @ w + b, label))
        weights.append(weight / weight.sum() * 6)  # each domain's weights sum to its share of the batch
    expected = (torch.cat(weights) * torch.cat(terms)).mean()
    assert cdan(f_s, f_t, logits_s, logits_t).item() == pytest.approx(expected.item(), rel=1e-5)


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


def test_an_adapted_model_is_a_classifier_run_that_transfers_again(digits, tmp_path, cli):
    """Each method/seed is a run: `evaluate` and `predict` take it, and `--backbone run:RUN`
    fine-tunes its body on the next dataset (here: the target, with a few labels)."""
    from PIL import Image

    from transferlab.tasks import classify

    adapt(*digits, methods=["dann"], out=tmp_path / "study", epochs=1, iters_per_epoch=10, batch_size=32)
    run = tmp_path / "study" / "dann-seed0"
    target_val = tmp_path / "usps"
    for i, (x, y) in enumerate(zip(digits[1].val.images[:40], digits[1].val.labels[:40])):
        (target_val / str(y)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(x).save(target_val / str(y) / f"{i}.png")
    code, out, err = cli("evaluate", run, target_val, "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 40
    code, out, err = cli("predict", target_val / "3", "--checkpoint", run, "--topk", "2", "--json")
    assert code == 0, err
    again = classify.fit(digits[1], out=tmp_path / "again", backbone=f"run:{run}", strategy="full", epochs=1,
                         batch_size=32, warmup_epochs=0.5, shots=5)  # fmt: skip
    saved = json.loads((again.run_dir / "run.json").read_text())
    assert saved["model"]["backbone"] == "lenet" and saved["weights_source"] == f"file {run / 'model.safetensors'}"
