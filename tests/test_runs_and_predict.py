"""The shared run format, and `predict` with ImageNet heads and trained runs."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from conftest import assert_user_error, write_image
from transferlab import backbones
from transferlab.errors import RunError
from transferlab.runs import read_run, save_run
from transferlab.tasks.predict import predict


@pytest.fixture
def photos(tmp_path):
    Image.fromarray(skdata.chelsea()).save(tmp_path / "chelsea.jpg")
    Image.fromarray(skdata.coffee()).save(tmp_path / "coffee.png")
    return tmp_path


def _classifier_run(path, classes=("red", "green", "blue")):
    model, config, _ = backbones.create("tf_efficientnet_lite0", num_classes=len(classes), img_size=64)
    save_run(
        path,
        task="classify",
        state_dict=model.state_dict(),
        model={"kind": "timm-classifier", "backbone": "tf_efficientnet_lite0", "num_classes": len(classes)},
        class_names=list(classes),
        preprocessing=config,
        metrics={"val_accuracy": 0.5},
    )
    return model


def test_imagenet_predict_names_classes(photos, cli):
    code, out, _ = cli("predict", photos, "--model", "tf_efficientnet_lite0", "--topk", "2", "--json")
    results = {r["path"].split("/")[-1]: r["predictions"] for r in json.loads(out)}
    assert code == 0
    assert 281 <= results["chelsea.jpg"][0]["index"] <= 285 and "cat" in results["chelsea.jpg"][0]["label"]
    assert results["coffee.png"][0]["label"] == "espresso" and len(results["coffee.png"]) == 2


def test_predict_batches_match_single_images(photos):
    many = predict([photos], model="tf_efficientnet_lite0", batch_size=1, topk=3)
    one_batch = predict([photos], model="tf_efficientnet_lite0", batch_size=8, topk=3)
    for a, b in zip(many, one_batch):
        assert [i for i, _, _ in a.top] == [i for i, _, _ in b.top]
        assert a.top[0][2] == pytest.approx(b.top[0][2], abs=1e-4)


def test_run_roundtrip_and_predict_with_checkpoint(tmp_path, photos, cli):
    model = _classifier_run(tmp_path / "run")
    info = read_run(tmp_path / "run", model_kind="timm-classifier")
    assert info.class_names == ["red", "green", "blue"] and info.preprocessing["input_size"] == [3, 64, 64]
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["versions"]["torch"] == torch.__version__
    loaded = backbones.from_run(info).model
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    code, out, _ = cli("predict", photos / "chelsea.jpg", "--checkpoint", tmp_path / "run", "--json")
    assert code == 0 and json.loads(out)[0]["predictions"][0]["label"] in ("red", "green", "blue")


def test_run_of_another_kind(tmp_path, photos, cli):
    _classifier_run(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta.update(task="gan", model={"kind": "gan"})
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    assert_user_error(cli("predict", photos, "-c", tmp_path / "run"), "'gan' run")


def test_run_from_a_newer_version(tmp_path):
    _classifier_run(tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    meta["format_version"] = 99
    (tmp_path / "run" / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunError, match="newer transferlab"):
        read_run(tmp_path / "run")


def test_damaged_run(tmp_path, photos, cli):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{not json")
    assert_user_error(cli("predict", photos, "-c", tmp_path / "run"), "damaged")


def test_predict_skips_unreadable_files(photos, cli):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    code, out, err = cli("predict", photos, "-m", "tf_efficientnet_lite0", "--json")
    assert code == 0 and len(json.loads(out)) == 2 and "skipped 1 unusable file(s)" in err and "broken.jpg" in err


def test_predict_needs_exactly_one_model(photos, cli):
    assert_user_error(cli("predict", photos), "exactly one of --model")


def test_predict_refuses_a_decompression_bomb(tmp_path, cli):
    Image.new("1", (12_000, 8_000)).save(tmp_path / "huge.png")
    assert_user_error(
        cli("predict", tmp_path / "huge.png", "-m", "tf_efficientnet_lite0"),
        "decompression bomb",
        "none of the given files",
    )


def test_every_run_kind_has_a_loader_and_says_where_its_runs_go(tmp_path, cli):
    from transferlab.registry import OWNERS
    from transferlab.runs import KINDS, save_run

    for kind in KINDS.values():
        assert callable(OWNERS[kind.name].api().load_run), kind.name
        assert kind.made_by.startswith("transferlab ") and kind.accepted_by, kind.name
    model = {"kind": "autoencoder", "encoder": "resnet10t", "img_size": 32}
    save_run(tmp_path / "ae", task="autoencoder", state_dict={"w": torch.zeros(1)}, model=model, class_names=[],
             preprocessing={})  # fmt: skip
    refused = cli("predict", write_image(tmp_path / "photo.png"), "-c", tmp_path / "ae")
    assert_user_error(refused, "'autoencoder' run holding a pretrained encoder", "classify --backbone ae:RUN")
