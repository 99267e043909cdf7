"""Autoencoder pretraining on unlabelled images and transfer of its encoder with --backbone ae:RUN."""

from __future__ import annotations

import numpy as np
import pytest
import timm
from PIL import Image
from safetensors.torch import load_file
from sklearn.datasets import load_digits

from conftest import assert_user_error
from transferlab.tasks import classify
from transferlab.tasks.autoencoder import ENCODER_FILE, pretrain

# One worker for the module: its trained fixtures are built once (pytest-xdist).
pytestmark = pytest.mark.xdist_group("autoencoder")


@pytest.fixture(scope="module")
def digits_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images[:200], digits.target[:200])):
        (root / str(label)).mkdir(exist_ok=True)
        Image.fromarray((image * 16).astype(np.uint8)).save(root / str(label) / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def encoder_run(digits_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("ae") / "run"
    return pretrain(digits_folder, out=out, steps=40, batch_size=32, lr=3e-3)


def test_pretraining_lowers_the_reconstruction_loss(encoder_run):
    assert np.mean(encoder_run.losses[-5:]) < 0.8 * np.mean(encoder_run.losses[:5])
    for name in (ENCODER_FILE, "model.safetensors", "run.json", "reconstructions.png", "report.html"):
        assert (encoder_run.run_dir / name).is_file(), name


def test_the_encoder_is_a_plain_timm_state_dict(encoder_run):
    model = timm.create_model("resnet10t", num_classes=0)
    model.load_state_dict(load_file(encoder_run.run_dir / ENCODER_FILE))


def test_classify_transfers_the_encoder(encoder_run, digits_folder, tmp_path):
    result = classify.fit(digits_folder, backbone=f"ae:{encoder_run.run_dir}", strategy="linear", epochs=10,
                          out=tmp_path / "clf")  # fmt: skip
    assert result.val_acc > 0.3  # chance is 0.1
    assert '"backbone": "resnet10t"' in (tmp_path / "clf" / "run.json").read_text()


def test_bad_input(encoder_run, digits_folder, tmp_path, cli):
    run = encoder_run.run_dir
    assert_user_error(cli("classify", digits_folder, "--backbone", f"ae:{run}", "--img-size", "64"), "32 px")
    assert_user_error(cli("classify", digits_folder, "--backbone", f"ae:{tmp_path}"), "not a transferlab run")
    assert_user_error(cli("autoencoder", "pretrain", digits_folder, "--img-size", "48"), "multiple of the encoder")
