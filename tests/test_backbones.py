"""Offline ImageNet backbones: the weights are real, sources resolve in order, bad weights fail clearly."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from conftest import assert_user_error
from transferlab import backbones
from transferlab.backbones import sources
from transferlab.data.transforms import eval_transform
from transferlab.errors import UsageError, WeightsError


def _top1(model, config, image) -> int:
    x = eval_transform(config)(Image.fromarray(image)).unsqueeze(0)
    with torch.inference_mode():
        return int(model.eval()(x).argmax())


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_builtin_weights_are_real_imagenet(name):
    model, config, source = backbones.create(name)
    assert source in ("built-in", "cache")
    assert (
        config["mean"] == (0.5, 0.5, 0.5) and config["std"] == (0.5, 0.5, 0.5) and config["interpolation"] == "bicubic"
    )
    assert 281 <= _top1(model, config, skdata.chelsea()) <= 285  # a cat
    assert _top1(model, config, skdata.coffee()) == 967  # espresso


def test_second_create_comes_from_the_cache():
    backbones.create("tf_efficientnet_lite0")
    assert sources.cache_file("tf_efficientnet_lite0").is_file()
    assert backbones.create("tf_efficientnet_lite0").weights_source == "cache"
    assert backbones.describe_source("tf_efficientnet_lite0") == "cache"


def test_conversion_checks_every_shape():
    import timm

    from transferlab.backbones.builtin import BUILTIN, convert_by_order

    lite1 = torch.load(BUILTIN["tf_efficientnet_lite1"].file(), map_location="cpu", weights_only=True)
    with pytest.raises(WeightsError, match=r"tensors|does not fit"):
        convert_by_order(lite1, timm.create_model("tf_efficientnet_lite0"), "lite1 package")


def test_new_head_and_headless():
    model, _, _ = backbones.create("tf_efficientnet_lite0", num_classes=7)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 7)
    features, _, _ = backbones.create("tf_efficientnet_lite0", num_classes=0)
    assert features(torch.zeros(1, 3, 64, 64)).shape == (1, 1280)


def test_img_size_override():
    assert backbones.create("tf_efficientnet_lite0", img_size=96).data_config["input_size"] == (3, 96, 96)


@pytest.mark.parametrize("fmt", ["safetensors", "pth", "timm-checkpoint"])
def test_weights_file_takes_precedence(tmp_path, fmt):
    from safetensors.torch import save_file

    donor, _, _ = backbones.create("tf_efficientnet_lite0", pretrained=False, num_classes=3)
    state = donor.state_dict()
    path = tmp_path / f"w.{'safetensors' if fmt == 'safetensors' else 'pth'}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    elif fmt == "pth":
        torch.save(state, path)
    else:
        torch.save({"epoch": 3, "arch": "x", "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    model, _, source = backbones.create("tf_efficientnet_lite0", weights=path, num_classes=3)
    assert source == f"file {path}"
    assert torch.equal(model.conv_stem.weight, donor.conv_stem.weight)
    assert torch.equal(model.classifier.weight, donor.classifier.weight)  # same-size head kept


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "obj.pth")  # a pickled module, not tensors
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        backbones.create("tf_efficientnet_lite0", weights=tmp_path / "obj.pth")


def test_weights_of_another_architecture(tmp_path):
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.zeros(3, 3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(WeightsError, match="do not fit tf_efficientnet_lite0"):
        backbones.create("tf_efficientnet_lite0", weights=tmp_path / "other.safetensors")


def test_unknown_backbone_suggests_names():
    with pytest.raises(UsageError, match="did you mean resnet18"):
        backbones.create("resnet181")


def test_offline_hub_backbone_is_one_clear_message(cli):
    assert_user_error(
        cli("predict", "x.png", "--model", "resnet18"), "x.png does not exist"
    )  # inputs are checked before the model is built


def test_offline_hub_backbone_message(monkeypatch, tmp_path, cli):
    from conftest import write_image

    write_image(tmp_path / "a.png")
    result = cli("predict", tmp_path / "a.png", "--model", "resnet18")
    assert_user_error(result, "no pretrained weights for 'resnet18'", "--weights", "tf_efficientnet_lite0")


def test_unreachable_hub_fails_fast(monkeypatch):
    """Without TRANSFERLAB_OFFLINE, an unreachable hub is detected by a probe, not a minute of retries."""
    monkeypatch.delenv("TRANSFERLAB_OFFLINE")
    monkeypatch.setattr(sources, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(WeightsError, match="cannot be reached") as info:
        backbones.create("resnet18")
    assert "--weights" in info.value.remedy


@pytest.mark.parametrize("value", ["1", "true", "ON"])
def test_hf_hub_offline_turns_downloads_off_like_transferlab_offline(monkeypatch, value):
    monkeypatch.delenv("TRANSFERLAB_OFFLINE")
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.setattr(sources, "_hub_reachable", lambda timeout=3.0: pytest.fail("no probe when offline"))
    with pytest.raises(WeightsError, match=r"downloads are off \(HF_HUB_OFFLINE\)"):
        backbones.create("resnet18")


def test_backbones_command_lists_sources(cli):
    code, out, _ = cli("backbones", "--json")
    import json

    rows = {r["name"]: r["weights"] for r in json.loads(out)}
    assert code == 0 and rows["tf_efficientnet_lite0"] in ("built-in", "cache") and rows["resnet50"].startswith("hub")


def test_backbones_all_with_filter(cli):
    code, out, _ = cli("backbones", "--all", "--filter", "resnet1*", "--json")
    import json

    names = [r["name"] for r in json.loads(out)]
    assert code == 0 and "resnet18" in names and all(n.startswith("resnet1") for n in names)
