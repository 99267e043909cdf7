"""The memory format and precision each device runs in: the rule, the flags that override it,
what a run records, and that inference follows the same choice."""

from __future__ import annotations

import json

import pytest
import torch

from transferlab.engine import performance
from transferlab.engine.options import CpuDefaults
from transferlab.engine.performance import choose, for_inference
from transferlab.options.classify import ClassifyOptions
from transferlab.options.gan import GanOptions


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(performance, "native_bf16", lambda: "AMX")


@pytest.fixture
def plain_cpu(monkeypatch):
    monkeypatch.setattr(performance, "native_bf16", lambda: "")


def test_a_cpu_with_native_bf16_trains_in_bf16_and_nhwc(bf16_cpu):
    chosen = choose("cpu", CpuDefaults())
    assert (chosen.precision, chosen.channels_last) == ("bf16-mixed", True)
    assert "AMX" in chosen.why and "bf16-mixed, channels_last" in chosen.describe()


def test_a_cpu_without_native_bf16_stays_32_bit(plain_cpu):
    chosen = choose("cpu", CpuDefaults())
    assert (chosen.precision, chosen.channels_last) == ("32-true", True)
    assert "no native bf16" in chosen.why


def test_a_task_whose_accuracy_did_not_hold_stays_32_bit_and_says_why(bf16_cpu):
    chosen = choose("cpu", CpuDefaults(bf16=False, why="FID rose beyond the seed spread"))
    assert chosen.precision == "32-true" and "FID rose" in chosen.why
    assert choose("cpu", CpuDefaults(channels_last=False)).channels_last is False
    boxes = choose("cuda", CpuDefaults(gpu_bf16=False, why="box coordinates"))  # detection, on a GPU too
    assert boxes.precision == "32-true" and "box coordinates" in boxes.why and boxes.channels_last
    assert choose("cuda", CpuDefaults(gpu_bf16=False), precision="bf16-mixed").precision == "bf16-mixed"


def test_the_users_flags_win(bf16_cpu):
    chosen = choose("cpu", CpuDefaults(), precision="32-true", channels_last=False)
    assert (chosen.precision, chosen.channels_last) == ("32-true", False)
    assert "as asked" in chosen.why
    assert choose("cuda").precision == "bf16-mixed" and choose("cuda").channels_last
    assert (choose("mps").precision, choose("mps").channels_last) == ("32-true", False)


def test_every_training_task_declares_its_cpu_defaults():
    from transferlab.options.adapt import AdaptOptions
    from transferlab.options.autoencoder import AutoencoderOptions
    from transferlab.options.stylize import StyleTrainOptions
    from transferlab.options.translate import TranslateOptions

    tasks = (ClassifyOptions, GanOptions, TranslateOptions, StyleTrainOptions, AdaptOptions, AutoencoderOptions)
    for options in tasks:
        assert "cpu_defaults" in vars(options), f"{options.__name__} keeps the generic default"
        defaults = options.cpu_defaults
        assert defaults.bf16 or defaults.why, f"{options.__name__}: bf16 is off without a reason"


def test_setup_trained_puts_the_network_in_the_chosen_format(bf16_cpu):
    from transferlab.engine.fabric import make_fabric, setup_trained

    for layout in (True, False):
        fabric = make_fabric("cpu", 1, precision="32-true", channels_last=layout)
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 3))
        module, _ = setup_trained(fabric, net, torch.optim.SGD(net.parameters(), lr=0.1))
        assert net[0].weight.is_contiguous(memory_format=torch.channels_last) == layout
        out = module(torch.randn(2, 3, 16, 16))
        assert out.is_contiguous(memory_format=torch.channels_last) == layout


def test_bf16_inference_returns_float32_features_close_to_fp32(bf16_cpu):
    from transferlab import backbones
    from transferlab.data.loaders import TensorBatches

    torch.manual_seed(0)
    model = backbones.create("resnet10t:random", num_classes=0).model
    images = TensorBatches(torch.rand(6, 3, 64, 64), torch.arange(6))
    exact, _ = backbones.extract_features(model, images, 3, choose("cpu", precision="32-true", channels_last=False))
    fast, labels = backbones.extract_features(model, images, 3, for_inference("cpu"))
    assert fast.dtype == torch.float32 and labels.tolist() == list(range(6))
    assert torch.nn.functional.cosine_similarity(exact, fast).min() > 0.99
    assert model.training  # its training mode is given back


def test_inference_restores_training_mode():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
    with for_inference("cpu").inference(net) as inside:
        assert not inside.training and not torch.is_grad_enabled()
    assert net.training


def test_a_run_says_and_records_what_it_chose(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("TRANSFERLAB_QUIET")
    common = ("classify", "digits", "--backbone", "lenet", "--strategy", "scratch", "--epochs", "1")
    code, _, err = cli(*common, "--out", tmp_path / "auto")
    assert code == 0, err
    expected = choose("cpu", ClassifyOptions.cpu_defaults)
    assert f"networks run as {expected.describe()}" in err
    recorded = json.loads((tmp_path / "auto" / "run.json").read_text())["performance"]
    assert recorded["precision"] == expected.precision and recorded["channels_last"] == expected.channels_last

    code, _, err = cli(*common, "--out", tmp_path / "asked", "--precision", "bf16-mixed", "--no-channels-last")
    assert code == 0, err
    recorded = json.loads((tmp_path / "asked" / "run.json").read_text())["performance"]
    assert (recorded["precision"], recorded["channels_last"]) == ("bf16-mixed", False)
    assert "as asked" in recorded["why"]


def test_an_unknown_precision_is_refused(cli):
    from conftest import assert_user_error

    assert_user_error(cli("classify", "digits", "--precision", "fp8"), "--precision 'fp8'")


def test_a_resumed_run_may_change_how_it_runs(tmp_path, cli, monkeypatch):
    monkeypatch.delenv("TRANSFERLAB_QUIET")
    common = ("classify", "digits", "--backbone", "lenet", "--strategy", "scratch", "--img-size", "28")
    code, _, err = cli(*common, "--epochs", "1", "--out", tmp_path / "run", "--channels-last")
    assert code == 0 and ", channels_last" in err, err
    code, _, err = cli(*common, "--epochs", "2", "--resume", tmp_path / "run", "--no-channels-last")
    assert code == 0, err
    assert ", contiguous" in err and "memory format as asked" in err, err
