"""`features` exports pooled features; `rank` orders backbones by LogME, and on real CIFAR-10
images that order matches the measured linear-probe accuracy."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_user_error, make_class_folder
from transferlab.metrics.transferability import logme
from transferlab.tasks.features import rank


@pytest.fixture(scope="module")
def cifar_subset(shared_data, tmp_path_factory) -> Path:
    """30 training images a class from ../shared/data/cifar10.tar.gz (streamed, not all extracted)."""
    root = tmp_path_factory.mktemp("cifar")
    counts: dict[str, int] = {}
    with tarfile.open(shared_data / "cifar10.tar.gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if member.isfile() and "train" in parts and counts.get(parts[-2], 0) < 30:
                counts[parts[-2]] = counts.get(parts[-2], 0) + 1
                target = root / parts[-2] / parts[-1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
            if len(counts) == 10 and min(counts.values()) >= 30:
                break
    return root


def test_features_export_npz(tmp_path, cli):
    data = make_class_folder(tmp_path / "d", {"a": 5, "b": 4})
    code, stdout, err = cli("features", data, "--img-size", "32", "--out", tmp_path / "f.npz")
    assert code == 0 and "9 x 1280 features" in stdout, err
    saved = np.load(tmp_path / "f.npz")
    assert saved["features"].shape == (9, 1280) and saved["labels"].tolist() == [0] * 5 + [1] * 4
    assert saved["classes"].tolist() == ["a", "b"] and len(saved["paths"]) == 9
    assert np.isfinite(saved["features"]).all()


def test_features_bad_input(tmp_path, cli):
    data = make_class_folder(tmp_path / "d", {"a": 2, "b": 2})
    assert_user_error(cli("features", data, "--out", tmp_path / "f.csv"), "neither .npz nor .parquet")
    assert_user_error(cli("features", data, "--out", tmp_path / "f.npz", "-b", "no_such_net"), "no_such_net")
    assert_user_error(cli("rank", data, "--backbones", "tf_efficientnet_lite0,nope"), "nope")


def test_logme_prefers_informative_features():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    informative = np.hstack([np.eye(4)[labels] * 2 + rng.normal(size=(400, 4)), rng.normal(size=(400, 28))])
    assert logme(informative, labels) > logme(rng.normal(size=(400, 32)), labels)


def test_rank_agrees_with_linear_probe_accuracy_on_cifar10(cifar_subset, tmp_path):
    candidates = ["tf_efficientnet_lite0", "resnet10t:random", "tf_efficientnet_lite0:random"]
    rows = rank(cifar_subset, candidates, img_size=64, probe=True, out=tmp_path / "rank")
    assert rows[0]["backbone"] == "tf_efficientnet_lite0", rows  # ImageNet features beat random ones
    # Wherever the measured probe accuracies clearly differ, LogME orders the pair the same way.
    for a in rows:
        for b in rows:
            if a["linear probe acc"] > b["linear probe acc"] + 0.05:
                assert a["LogME"] > b["LogME"], rows
    assert (tmp_path / "rank" / "report.html").is_file() and (tmp_path / "rank" / "logme.png").is_file()
