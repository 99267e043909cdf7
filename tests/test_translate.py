"""`translate`: the self-supervised tasks make the inputs their math says, training writes a run
that `evaluate` and `apply` take (tiles for large images), resume is exact, the encoder and the
discriminator transfer (ImageNet, ae:RUN, a GAN run's D), and bad input gets one clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from conftest import assert_user_error
from transferlab.engine.checkpoint import load_checkpoint
from transferlab.engine.session import checkpoint_path
from transferlab.options.translate import TranslateOptions
from transferlab.tasks import translate
from transferlab.tasks.translate.data import MAKERS

# One worker for the module: its trained fixtures are built once (pytest-xdist).
pytestmark = pytest.mark.xdist_group("translate")

FAST = {"steps": 4, "batch_size": 4, "eval_every": 2, "img_size": 64, "decoder_width": 8, "perceptual_weight": 0.1}


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """40 real photo crops (scikit-image's astronaut, coffee, chelsea, rocket)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = getattr(skdata, name)()
        for i in range(10):
            y, x = rng.integers(0, image.shape[0] - 96), rng.integers(0, image.shape[1] - 96)
            Image.fromarray(image[y : y + 96, x : x + 96]).save(root / f"{name}{i}.png")
    return root


@pytest.fixture(scope="module")
def colorize_run(photos, tmp_path_factory):
    return translate.train(photos, out=tmp_path_factory.mktemp("tr") / "run", task="colorize", **FAST)


def test_each_task_makes_the_input_its_definition_says():
    torch.manual_seed(0)
    y = torch.rand(2, 3, 32, 32)
    opts = TranslateOptions(scale=4, noise=0.2)
    g = torch.Generator().manual_seed(0)
    grey = MAKERS["colorize"][1](y, g, opts)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.allclose(
        grey[:, 0], 0.299 * y[:, 0] + 0.587 * y[:, 1] + 0.114 * y[:, 2]
    )
    small = MAKERS["superres"][1](y, g, opts)
    assert small.shape == y.shape and (small - y).abs().mean() > 0.05  # the detail is gone
    masked = MAKERS["inpaint"][1](y, g, opts)
    mask = masked[:, 3:]
    assert masked.shape[1] == 4 and 0.05 < mask.mean() < 0.3 and (masked[:, :3] * mask).abs().max() == 0
    noisy = MAKERS["denoise"][1](y, g, opts)
    assert 0.1 < (noisy - y).std() < 0.25
    edges = MAKERS["edges"][1](torch.zeros(1, 3, 8, 8).index_fill_(3, torch.arange(4, 8), 1.0), g, opts)
    assert edges[0, 0, :, 3:5].min() > 0.9 and edges[0, 0, :, :2].max() == 0  # a vertical edge, nothing else


def test_training_writes_a_run_that_evaluate_and_apply_take(colorize_run, photos, tmp_path, cli):
    run = colorize_run.run_dir
    for name in ("model.safetensors", "run.json", "held_out.png", "losses.png", "psnr.png", "report.html"):
        assert (run / name).is_file(), name
    assert colorize_run.scores["psnr"] > 5 and 0 < colorize_run.scores["ssim"] <= 1
    assert colorize_run.scores["fid_lite0"] > 0  # colorize invents colour: FID on Lite0 features too
    assert "Lite0 perceptual distance" in (run / "report.html").read_text()
    code, out, err = cli("translate", "evaluate", run, photos, "--json")
    assert code == 0, err
    scores = json.loads(out)
    assert scores["images"] == 40 and scores["task"] == "colorize" and scores["fid_lite0"] > 0
    assert (run / "evaluations" / photos.name / "translate.json").is_file()
    Image.fromarray(skdata.astronaut()[:300, :200]).save(tmp_path / "large.png")  # 200 x 300: several tiles
    code, _, err = cli("translate", "apply", run, tmp_path / "large.png", "--tile", "128", "-o", tmp_path / "out")
    assert code == 0, err
    result = Image.open(tmp_path / "out" / "large_colorize.png")
    assert result.size == (200, 300) and result.mode == "RGB"


def test_resume_continues_exactly(photos, tmp_path):
    options = {**FAST, "task": "denoise", "steps": 6, "checkpoint_every": 3}
    translate.train(photos, out=tmp_path / "whole", **options)
    translate.train(photos, out=tmp_path / "part", stop_after=3, **options)
    translate.train(photos, resume=tmp_path / "part")
    a = load_checkpoint(checkpoint_path(tmp_path / "whole"))["generator"]
    b = load_checkpoint(checkpoint_path(tmp_path / "part"))["generator"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_paired_folders_and_side_by_side_images(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(6):
        b = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
        for folder, image in (("A", 255 - b), ("B", b)):
            (tmp_path / "ab" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(tmp_path / "ab" / folder / f"{i}.png")
        (tmp_path / "side").mkdir(exist_ok=True)
        Image.fromarray(np.concatenate([255 - b, b], axis=1)).save(tmp_path / "side" / f"{i}.jpg")
    for folder in ("ab", "side"):
        result = translate.train(tmp_path / folder, out=tmp_path / f"run-{folder}", task="paired",
                                 **{**FAST, "steps": 2, "perceptual_weight": 0.0})  # fmt: skip
        assert result.scores["psnr"] > 0 and (result.run_dir / "held_out.png").is_file()


def test_adversarial_with_patchgan_and_with_a_gan_runs_discriminator(photos, tmp_path):
    from transferlab.tasks import gan

    source = gan.train(photos, out=tmp_path / "gan", arch="dcgan", img_size=32, width=8, batch_size=8, steps=2,
                       eval_every=0, sample_every=0)  # fmt: skip
    for extra in ({}, {"d_init": str(source.run_dir)}, {"d_features": "lite0"}):
        result = translate.train(photos, out=tmp_path / f"adv{len(extra)}{list(extra)}", task="inpaint",
                                 adversarial=True, **{**FAST, "steps": 1, "eval_every": 0}, **extra)  # fmt: skip
        state = load_checkpoint(checkpoint_path(result.run_dir))
        assert "discriminator" in state and result.scores["psnr"] > 0


def test_compare_trains_each_encoder_on_one_budget(photos, tmp_path, cli):
    from transferlab.tasks import autoencoder

    ae = autoencoder.pretrain(photos, out=tmp_path / "ae", encoder="tf_efficientnet_lite0", img_size=64, steps=2,
                              batch_size=4)  # fmt: skip
    args = ("translate", "train", photos, "--task", "superres", "--steps", "2", "--batch-size", "4",
            "--decoder-width", "8", "--perceptual-weight", "0", "--out", tmp_path / "cmp")  # fmt: skip
    code, _, err = cli(*args, "--compare", f"scratch,imagenet,ae:{ae.run_dir}")
    assert code == 0, err
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    assert [r["encoder"] for r in rows] == ["scratch", "imagenet", f"ae:{ae.run_dir}"]
    assert rows[0]["weights"] == "random init" and rows[2]["weights"].startswith("file ")
    assert (tmp_path / "cmp" / "report.html").is_file()


def test_bad_input(photos, tmp_path, cli):
    (tmp_path / "pairs" / "A").mkdir(parents=True)
    (tmp_path / "pairs" / "B").mkdir()
    for i in range(5):
        Image.new("RGB", (16, 16)).save(tmp_path / "pairs" / "A" / f"{i}.png")
    for i in (0, 1, 2, 7):
        Image.new("RGB", (16, 16) if i else (20, 16)).save(tmp_path / "pairs" / "B" / f"{i}.png")
    base = ("translate", "train", "--steps", "1", "--batch-size", "2")
    assert_user_error(cli(*base, tmp_path / "pairs", "--task", "paired"), "have no partner", "A/3", "A/4", "B/7")
    (tmp_path / "pairs" / "B" / "7.png").rename(tmp_path / "pairs" / "B" / "3.png")
    Image.new("RGB", (16, 16)).save(tmp_path / "pairs" / "B" / "4.png")
    assert_user_error(cli(*base, tmp_path / "pairs", "--task", "paired"), "'0' differs in size")
    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(6):
        Image.fromarray(skdata.camera()[i * 40 : i * 40 + 64, :64]).save(grey / f"{i}.png")
    assert_user_error(cli(*base, grey, "--task", "colorize"), "every image is grey")
    assert_user_error(cli(*base, photos, "--img-size", "48"), "--img-size 48 does not fit this encoder")
    assert_user_error(cli(*base, photos, "--task", "sharpen"), "'sharpen' is not one of the choices")
    assert_user_error(cli(*base, photos, "--d-init", tmp_path), "add --adversarial")
    from transferlab.runs import save_run

    save_run(tmp_path / "clf", task="classify", state_dict={"w": torch.zeros(1)}, model={"kind": "timm-classifier"},
             class_names=["a"], preprocessing={})  # fmt: skip
    refused = cli("translate", "apply", tmp_path / "clf", photos)
    assert_user_error(refused, "not an image-to-image U-Net", "translate train")
