"""Robustness to corrupted images: the corruptions (seeded, severity-ordered, any size) and
``transferlab evaluate RUN DATA --corruptions`` end to end, with its bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import assert_user_error, make_class_folder

from transferlab import robustness
from transferlab.errors import UsageError

pytestmark = pytest.mark.xdist_group("robustness")


def photo(size: tuple[int, int] = (64, 80)) -> np.ndarray:
    yy, xx = np.mgrid[: size[0], : size[1]]
    return np.stack([(xx * 3) % 256, (yy * 4) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)


def test_corruption_names_families_and_refusals():
    assert robustness.parse("all") == list(robustness.CORRUPTIONS) and len(robustness.CORRUPTIONS) == 15
    assert robustness.parse("fog,noise") == ["gaussian_noise", "shot_noise", "impulse_noise", "fog"]
    with pytest.raises(UsageError, match="unknown corruption 'fogg'") as found:
        robustness.parse("fogg")
    assert "fog" in found.value.remedy
    with pytest.raises(UsageError, match="within 1-5"):
        robustness.check_severities([0, 6])


@pytest.mark.parametrize("name", robustness.CORRUPTIONS)
def test_every_corruption_is_seeded_and_grows_with_severity(name):
    image = photo()
    mild, severe = (robustness.corrupt(image, name, s, seed=0) for s in (1, 5))
    assert mild.shape == severe.shape == image.shape and severe.dtype == np.uint8
    assert np.array_equal(severe, robustness.corrupt(image, name, 5, seed=0))
    change = [np.abs(x.astype(float) - image).mean() for x in (mild, severe)]
    assert change[1] > 0 and change[1] >= change[0] * 0.9, change
    small = robustness.corrupt(photo((28, 28)), name, 3, seed=0)  # under the library's 32 px limit
    assert small.shape == (28, 28, 3)


def test_noise_differs_between_seeds():
    image = photo()
    assert not np.array_equal(*(robustness.corrupt(image, "gaussian_noise", 3, seed=s) for s in (0, 1)))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, Path]:
    from transferlab.tasks import classify

    root = tmp_path_factory.mktemp("robust")
    photos = make_class_folder(root / "photos", {"red": 8, "blue": 8})
    classify.train(photos, out=root / "run", img_size=32, batch_size=8, epochs=1, devices=1)
    return root / "run", photos


def test_evaluate_with_corruptions(run, cli):
    run_dir, photos = run
    code, out, err = cli("evaluate", run_dir, photos, "--json", "--corruptions", "noise,fog", "--severities", "1,5")
    assert code == 0, err
    metrics = json.loads(out)
    found = metrics["corruptions"]
    assert list(found["table"]) == ["gaussian_noise", "shot_noise", "impulse_noise", "fog"]
    assert all(list(row) == ["1", "5"] and all(0 <= v <= 1 for v in row.values()) for row in found["table"].values())
    assert found["clean"] == pytest.approx(metrics["accuracy"])  # the same pixels as the plain evaluation
    assert found["mean"] == pytest.approx(np.mean([v for row in found["table"].values() for v in row.values()]))
    assert found["relative_drop"] == pytest.approx((found["clean"] - found["mean"]) / found["clean"])
    folder = run_dir / "evaluations" / "photos"
    assert (folder / "robustness.png").stat().st_size > 1000
    assert "impulse_noise" in (folder / "report.html").read_text()
    assert json.loads((folder / "evaluation.json").read_text())["corruptions"]["table"] == found["table"]
    # the same seed gives the same table; the flag at the end of the line means all 15
    again = json.loads(cli("evaluate", run_dir, photos, "--json", "--corruptions", "noise,fog", "--severities",
                           "1,5")[1])  # fmt: skip
    assert again["corruptions"]["table"] == found["table"]
    code, out, err = cli("evaluate", run_dir, photos, "--severities", "2", "--corruptions")
    assert code == 0, err
    assert "under 15 corruptions x 1 severities" in out and "jpeg compression" in out


def test_evaluate_refuses_bad_corruptions(run, cli):
    run_dir, photos = run
    assert_user_error(cli("evaluate", run_dir, photos, "--corruptions", "rain"), "unknown corruption 'rain'",
                      "weather")  # fmt: skip
    assert_user_error(cli("evaluate", run_dir, photos, "--corruptions", "fog", "--severities", "0,9"), "within 1-5")
    assert_user_error(cli("evaluate", run_dir, photos, "--corruptions", "fog", "--severities", "x"), "not a list")


@pytest.fixture(scope="module")
def dense_runs(tmp_path_factory) -> Path:
    from tests.conftest import write_detection_set, write_segmentation_set

    from transferlab.tasks import detect, segment

    root = tmp_path_factory.mktemp("dense")
    write_segmentation_set(root / "scenes", 8)
    # trained with --corrupt: half of each step's crops corrupted (the augmentation's whole path)
    segment.train(root / "scenes", out=root / "segmenter", img_size=64, epochs=1, batch_size=4, width=8,
                  backbone="resnet10t:random", accelerator="cpu", corrupt=0.5)  # fmt: skip
    write_detection_set(root / "shapes", 8)
    detect.train(root / "shapes", out=root / "detector", img_size=64, epochs=1, batch_size=4, width=64,
                 backbone="resnet10t:random", accelerator="cpu", corrupt=0.5)  # fmt: skip
    return root


@pytest.mark.parametrize(("task", "data", "metric"), [("segment", "scenes", "miou"), ("detect", "shapes", "map_50")])
def test_dense_evaluate_with_corruptions(dense_runs, cli, task, data, metric):
    run_dir = dense_runs / f"{task}er" if task == "segment" else dense_runs / "detector"
    code, out, err = cli(task, "evaluate", run_dir, dense_runs / data, "--corruptions", "blur,fog",
                         "--severities", "5", "--json")  # fmt: skip
    assert code == 0, err
    scores = json.loads(out)
    found = scores["corruptions"]
    assert found["metric"] == metric and found["clean"] == pytest.approx(scores[metric])
    assert list(found["table"]) == ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "fog"]
    assert all(0 <= row["5"] <= 1 for row in found["table"].values())
    assert (run_dir / "evaluations" / data / "robustness.png").is_file()
    assert json.loads((run_dir / "run.json").read_text())["options"]["corrupt"] == 0.5  # trained with --corrupt
    assert_user_error(cli(task, "evaluate", run_dir, dense_runs / data, "--corruptions", "haze"), "unknown corruption")


def test_corrupt_augments_training_crops_as_drawn_and_refuses_a_share_outside_0_1():
    """``--corrupt SHARE``: that share of a step's crops corrupted (never elastic_transform, which
    would move pixels off their mask, nor the slow glass_blur), the rest untouched; drawn from
    the step's draw, so a step's crops are corrupted alike on every run."""
    import torch

    from transferlab.engine.batches import BatchDraw
    from transferlab.options.detect import DetectOptions
    from transferlab.options.segment import SegmentOptions

    assert "elastic_transform" not in robustness.TRAINING_CORRUPTIONS
    assert "glass_blur" not in robustness.TRAINING_CORRUPTIONS and len(robustness.TRAINING_CORRUPTIONS) == 13
    rng = np.random.default_rng(0)
    crops = [torch.from_numpy(rng.integers(0, 256, (3, 40, 48), dtype=np.uint8)) for _ in range(16)]
    none = robustness.corrupted_crops(crops, BatchDraw.for_step(0, 3, 16), 0.0)
    assert all(a is b for a, b in zip(none, crops))
    every = robustness.corrupted_crops(crops, BatchDraw.for_step(0, 3, 16), 1.0)
    again = robustness.corrupted_crops(crops, BatchDraw.for_step(0, 3, 16), 1.0)
    assert all(e.shape == c.shape and e.dtype == torch.uint8 for e, c in zip(every, crops))
    assert sum(not torch.equal(e, c) for e, c in zip(every, crops)) >= 14  # brightness at 1 may change little
    assert all(torch.equal(a, b) for a, b in zip(every, again))
    half = robustness.corrupted_crops(crops, BatchDraw.for_step(0, 3, 16), 0.5)
    assert 2 <= sum(h is c for h, c in zip(half, crops)) <= 14
    for options in (SegmentOptions, DetectOptions):
        with pytest.raises(UsageError, match=r"--corrupt 1\.5 is not a share between 0 and 1"):
            options(corrupt=1.5).check()
