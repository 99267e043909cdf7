"""`stylize` by optimisation, at small sizes on the CPU: losses fall, colour is preserved, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from conftest import assert_user_error
from transferlab.errors import TrainingError
from transferlab.tasks.stylize import color, stylize
from transferlab.tasks.stylize.losses import gram, smooth

FAST = {"size": 64, "steps": 15, "multiscale": False}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("styl")
    Image.fromarray(skdata.chelsea()).resize((96, 64)).save(folder / "content.png")
    Image.fromarray(skdata.brick()).convert("RGB").resize((64, 64)).save(folder / "style.png")
    Image.fromarray(skdata.coffee()).resize((80, 64)).save(folder / "style2.png")
    return folder


def test_losses_fall_and_outputs_are_written(images, tmp_path):
    result = stylize(images / "content.png", [images / "style.png"], out=tmp_path, **FAST)
    assert result.trace.total[-1] < 0.8 * result.trace.total[0] and result.loss_drop > 0.2
    assert result.trace.style[-1] < result.trace.style[0]
    out = Image.open(result.image)
    assert out.size == (64, 43) and out.mode == "RGB"
    for name in ("panel.png", "losses.png", "report.html", "stylize.json"):
        assert (tmp_path / name).is_file()


def test_two_styles_mixed_and_adam(images, tmp_path):
    result = stylize(
        images / "content.png",
        [images / "style.png", images / "style2.png"],
        out=tmp_path,
        style_mix=[3, 1],
        optimizer="adam",
        lr=0.05,
        **FAST,
    )
    assert result.trace.total[-1] < result.trace.total[0]


def test_preserve_color_keeps_the_content_chroma(images, tmp_path):
    result = stylize(images / "content.png", [images / "style2.png"], out=tmp_path, preserve_color=True, **FAST)
    out = torch.from_numpy(np.asarray(Image.open(result.image), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    content = torch.from_numpy(
        np.asarray(Image.open(images / "content.png").resize(out.shape[-1:-3:-1], Image.BICUBIC), dtype=np.float32)
        / 255
    )
    content = content.permute(2, 0, 1)[None]
    chroma_out, chroma_in = color.to_yiq(out)[:, 1:], color.to_yiq(content)[:, 1:]
    assert (chroma_out - chroma_in).abs().mean() < 0.02  # the colours are the content's
    assert result.trace.style[-1] < result.trace.style[0]  # the luminance was stylised


def test_smoothing_and_gram():
    f = torch.randn(1, 4, 3, 3)
    assert torch.allclose(smooth(f, "channel").sum(dim=1), torch.full((1, 3, 3), 4.0))
    assert smooth(f, "all").sum().item() == pytest.approx(36.0, rel=1e-5)
    g = gram(f)
    assert g.shape == (1, 4, 4) and torch.allclose(g, g.transpose(1, 2))


def test_tiny_image_is_refused(images, tmp_path, cli):
    Image.new("RGB", (20, 20)).save(tmp_path / "tiny.png")
    assert_user_error(
        cli("stylize", tmp_path / "tiny.png", "--style", images / "style.png", "--out", tmp_path / "o"),
        "needs at least 32 px",
    )


def test_non_rgb_inputs_are_converted(images, tmp_path):
    Image.open(images / "content.png").convert("L").save(tmp_path / "grey.png")
    Image.open(images / "style.png").convert("RGBA").save(tmp_path / "rgba.png")
    result = stylize(tmp_path / "grey.png", [tmp_path / "rgba.png"], out=tmp_path / "o", **FAST)
    assert Image.open(result.image).mode == "RGB"


def test_large_content_is_downscaled_with_a_message(images, tmp_path):
    Image.fromarray(skdata.chelsea()).save(tmp_path / "big.png")  # 451 x 300
    with pytest.warns(UserWarning, match="resized to 64 px"):
        stylize(tmp_path / "big.png", [images / "style.png"], out=tmp_path / "o", **{**FAST, "steps": 2})


def test_nan_during_optimisation_is_one_clear_error(images, tmp_path, monkeypatch):
    from transferlab.tasks.stylize import optimize

    def broken(self, image):
        loss = (image * float("nan")).sum()
        return loss, float("nan"), float("nan")

    monkeypatch.setattr(optimize.Objective, "__call__", broken)
    with pytest.raises(TrainingError, match="evaluation 1") as info:
        stylize(images / "content.png", [images / "style.png"], out=tmp_path, **FAST)
    assert "--style-weight" in info.value.remedy


def test_bad_options(images, tmp_path, cli):
    base = ("stylize", images / "content.png", "--style", images / "style.png", "--out", tmp_path)
    assert_user_error(cli(*base, "--network", "alexnet"), "unknown feature network 'alexnet'")
    assert_user_error(cli(*base, "--size", "9000"), "outside 32..4096")
    assert_user_error(cli(*base, "--style-mix", "a,b"), "not a list of numbers")
    assert_user_error(cli(*base, "--network", "vgg19"), "vgg19", "--weights")  # offline: no VGG weights


def test_the_built_in_painting_is_seeded_sized_and_textured():
    """The demo's style image: one seed, one picture; bold strokes (strong local contrast, unlike a
    smooth photo) in a blue-dominant palette with yellow highlights."""
    from transferlab.data.brushwork import swirl_painting

    first, again, other = swirl_painting(96, seed=3), swirl_painting(96, seed=3), swirl_painting(96, seed=4)
    assert first.size == (96, 96) and first.mode == "RGB"
    pixels = np.asarray(first, dtype=np.float64)
    assert np.array_equal(pixels, np.asarray(again)) and not np.array_equal(pixels, np.asarray(other))
    grey = pixels.mean(axis=2)
    local_contrast = np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean()
    chelsea = np.asarray(Image.fromarray(skdata.chelsea()).resize((96, 96)), dtype=np.float64).mean(axis=2)
    photo_contrast = np.abs(np.diff(chelsea, axis=0)).mean() + np.abs(np.diff(chelsea, axis=1)).mean()
    assert local_contrast > 2 * photo_contrast
    red, green, blue = pixels.reshape(-1, 3).T
    assert (blue > red).mean() > 0.5 and ((red > 180) & (green > 150) & (blue < 140)).mean() > 0.02
