"""Feed-forward style networks (Johnson et al.) at test size on the CPU: training lowers the loss,
resuming is exact, the run round-trips, and bad input gets one clear message."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from skimage import data as skdata

from conftest import assert_user_error
from transferlab.engine.checkpoint import load_checkpoint
from transferlab.engine.session import checkpoint_path
from transferlab.errors import TrainingError
from transferlab.tasks.stylize import apply_style, load_style_model, train_style
from transferlab.tasks.stylize.transformer import StyleTransformer

# One worker for the module: its trained fixtures are built once (pytest-xdist).
pytestmark = pytest.mark.xdist_group("stylize_feedforward")

TINY = {"train_size": 48, "style_size": 64, "batch_size": 2, "width": 8, "blocks": 1, "lr": 3e-3}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("ff")
    content = root / "content"
    content.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((80, 60)).save(content / f"{name}.png")
    Image.fromarray(skdata.brick()).convert("RGB").resize((64, 64)).save(root / "style.png")
    return root


@pytest.fixture(scope="module")
def trained(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    return train_style(images / "style.png", images / "content", out=out, steps=40, **TINY)


def test_training_lowers_the_loss_and_writes_a_run(trained):
    first, last = sum(trained.losses[:5]) / 5, sum(trained.losses[-5:]) / 5
    assert last < 0.9 * first
    for name in ("model.safetensors", "run.json", "report.html", "samples.png", "losses.png", "style.png"):
        assert (trained.run_dir / name).is_file()


def test_the_run_round_trips(trained):
    model = load_style_model(trained.run_dir)
    saved = load_checkpoint(checkpoint_path(trained.run_dir))["model"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert set(load_file(trained.run_dir / "model.safetensors")) == set(saved)


def test_apply_keeps_sizes_and_is_deterministic(trained, images, tmp_path):
    odd = tmp_path / "odd.png"
    Image.open(images / "content" / "chelsea.png").resize((71, 53)).save(odd)
    first = apply_style(trained.run_dir, [images / "content", odd], out=tmp_path / "a", batch_size=3)
    second = apply_style(trained.run_dir, [odd], out=tmp_path / "b")
    assert len(first) == 5 and Image.open(first[-1]).size == (71, 53)
    assert Image.open(first[-1]).tobytes() == Image.open(second[0]).tobytes()
    assert Image.open(first[0]).size == (80, 60)


def test_resume_continues_exactly(images, tmp_path):
    whole = train_style(images / "style.png", images / "content", out=tmp_path / "whole", steps=8, **TINY)
    part = tmp_path / "part"
    train_style(images / "style.png", images / "content", out=part, steps=8, stop_after=3, **TINY)
    resumed = train_style(images / "style.png", images / "content", resume=part)
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-5)
    a, b = load_style_model(whole.run_dir), load_style_model(part)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(x, y, atol=1e-6), key


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(images, tmp_path, monkeypatch):
    from transferlab.tasks.stylize import losses

    real = losses.PerceptualLoss.forward
    calls = {"n": 0}

    def flaky(self, image, target):
        calls["n"] += 1
        total, style, content = real(self, image, target)
        return (total * float("nan") if calls["n"] > 3 else total), style, content

    monkeypatch.setattr(losses.PerceptualLoss, "forward", flaky)
    opts = {**TINY, "checkpoint_every": 2}
    with pytest.raises(TrainingError, match="step 4") as info:
        train_style(images / "style.png", images / "content", out=tmp_path / "r", steps=10, **opts)
    assert "last good state" in info.value.remedy
    assert load_checkpoint(checkpoint_path(tmp_path / "r"))["step"] == 2


def test_bad_input(trained, images, tmp_path, cli):
    content = images / "content"
    assert_user_error(cli("stylize", content, "--model", tmp_path), "not a transferlab run")
    assert_user_error(cli("stylize", content, "--model", trained.run_dir, "--style", images / "style.png"), "both")
    assert_user_error(cli("stylize", content, images / "style.png", "--style", images / "style.png"), "2 content")
    Image.new("RGB", (10, 10)).save(tmp_path / "tiny.png")
    assert_user_error(cli("stylize", tmp_path / "tiny.png", "--model", trained.run_dir), "at least 16 px")
    assert_user_error(cli("stylize", "train", images / "style.png", "--content", tmp_path / "none"), "none")


def test_a_run_of_another_kind_is_refused(tmp_path, cli):
    from transferlab.runs import save_run

    save_run(tmp_path / "other", task="classify", state_dict={"w": torch.zeros(1)},
             model={"kind": "timm-classifier"}, class_names=["a", "b"], preprocessing={})  # fmt: skip
    refused = cli("stylize", tmp_path, "--model", tmp_path / "other")
    assert_user_error(refused, "not a feed-forward style network", "transferlab stylize train")


def test_cli_trains_and_applies(images, tmp_path, cli):
    run = tmp_path / "run"
    code, stdout, _ = cli("stylize", "train", images / "style.png", "--content", images / "content", "--steps", "3",
                          "--train-size", "32", "--width", "4", "--blocks", "1", "--out", run)  # fmt: skip
    assert code == 0 and "style network" in stdout
    code, stdout, _ = cli("stylize", images / "content", "--model", run, "--out", tmp_path / "o")
    assert code == 0 and "4 image(s)" in stdout


def test_any_size_passes_through_the_network():
    model = StyleTransformer(width=4, blocks=1).eval()
    for h, w in ((16, 16), (17, 23), (33, 64)):
        assert model(torch.rand(1, 3, h, w)).shape == (1, 3, h, w)
