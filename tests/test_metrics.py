"""Metrics are asked for by name, one way for all of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab import metrics
from transferlab.errors import UsageError

# One worker for the module: its trained fixtures are built once (pytest-xdist).
pytestmark = pytest.mark.xdist_group("metrics")


def test_every_metric_is_registered_and_answers_by_name():
    assert {"classification", "fid_kid", "logme"} <= set(metrics.names())
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]])
    scores = metrics.compute("classification", logits=logits, labels=torch.tensor([0, 1, 1, 1]), classes=["a", "b"])
    assert scores["accuracy"] == pytest.approx(0.75) and scores["confusion_matrix"] == [[1, 0], [1, 2]]
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    separable = rng.normal(size=(100, 8)) + labels[:, None] * 4.0
    assert metrics.compute("logme", features=separable, labels=labels) > metrics.compute(
        "logme", features=rng.normal(size=(100, 8)), labels=labels
    )  # features that separate the classes score higher
    real = torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8)
    same = metrics.compute("fid_kid", real=real, fake=real, extractor="lite0")
    other = metrics.compute("fid_kid", real=real, fake=255 - real, extractor="lite0")
    assert same.fid < 1e-3 < other.fid and same.extractor == "lite0"


def test_an_unknown_metric_lists_the_known_ones():
    with pytest.raises(UsageError, match="unknown metric 'fidd'") as info:
        metrics.compute("fidd")
    assert "fid_kid" in info.value.remedy


def test_diversity_is_the_mean_pairwise_distance_and_sees_collapse():
    from transferlab.metrics.generation import GenerationMetric

    assert metrics.compute("diversity", features=torch.tensor([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)
    assert metrics.compute("diversity", features=torch.ones(10, 4)) == 0.0
    real = torch.randint(0, 255, (12, 3, 32, 32), dtype=torch.uint8)
    collapsed = real[:1].expand(12, -1, -1, -1).clone()  # one image for every latent
    scores = GenerationMetric(real, "lite0").score(collapsed)
    assert scores.diversity < 1e-3 < scores.real_diversity


@pytest.fixture(scope="module")
def digit_classifier(tmp_path_factory):
    """A LeNet classify run on scikit-learn's real handwritten digits, and its held-out images."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from transferlab.tasks import classify

    root = tmp_path_factory.mktemp("digits")
    data = load_digits()
    for i, (image, label) in enumerate(zip(data.images, data.target)):
        (root / str(label)).mkdir(exist_ok=True)
        Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(root / str(label) / f"{i}.png")
    run = classify.fit(root, out=tmp_path_factory.mktemp("clf") / "run", backbone="lenet", strategy="scratch",
                       epochs=6, batch_size=32, lr=3e-3)  # fmt: skip
    held = torch.from_numpy(np.stack([(im * 16).clip(0, 255).astype(np.uint8) for im in data.images[-300:]]))
    images = held[:, None].expand(-1, 3, -1, -1).contiguous()
    return run.run_dir, images, torch.as_tensor(data.target[-300:]), root


def test_class_consistency_reads_real_digits_as_their_class_and_shuffled_labels_as_chance(digit_classifier):
    run, images, labels, _ = digit_classifier
    names = [str(k) for k in range(10)]
    right = metrics.compute("class_consistency", images=images, labels=labels, classifier=str(run), names=names)
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    wrong = metrics.compute("class_consistency", images=images, labels=shuffled, classifier=str(run), names=names)
    assert right["consistency"] > 0.7 and wrong["consistency"] < 0.25 and right["coverage"] == 1.0
    with pytest.raises(UsageError, match="does not know the class"):
        metrics.compute("class_consistency", images=images, labels=labels, classifier=str(run), names=["cat"] * 10)


def test_a_conditional_gan_is_judged_by_a_classifier_run(digit_classifier, tmp_path, cli):
    """`--fid-features run:RUN`: FID/KID on the classifier's features, class consistency and
    coverage, and the diversity of samples beside that of the real images, in the run's report."""
    import csv

    from conftest import assert_user_error

    run, _, _, root = digit_classifier
    args = ("gan", "train", root, "--conditional", "--arch", "dcgan", "--img-size", "32", "--width", "8",
            "--batch-size", "16", "--steps", "2", "--eval-every", "2", "--fid-samples", "50",
            "--sample-every", "0")  # fmt: skip
    code, _, err = cli(*args, "--fid-features", f"run:{run}", "--out", tmp_path / "gan")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "gan" / "evaluations.csv").read_text().splitlines()))
    last = rows[-1]
    assert 0 <= float(last["class_consistency"]) <= 1 and 0 < float(last["class_coverage"]) <= 1
    assert float(last["real_diversity"]) > 0 and float(last["diversity"]) >= 0
    html = (tmp_path / "gan" / "report.html").read_text()
    assert "class consistency" in html and "diversity" in html
    assert_user_error(cli(*args, "--fid-features", f"run:{tmp_path / 'nothing'}"), "not a transferlab run")


def test_fid_and_kid_share_one_pass_of_the_feature_network(monkeypatch):
    """torchmetrics' FID and KID each call the extractor; the metric runs it once per batch."""
    from torch import nn

    from transferlab.metrics import generation

    class Counting(nn.Module):
        num_features = 8

        def __init__(self) -> None:
            super().__init__()
            self.calls, self.project = 0, nn.Linear(3, 8)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            self.calls += 1  # features of order 1: KID's cubic kernel on pixel-sized ones overflows float32's digits
            return self.project(images.float().mean(dim=(2, 3)) / 255)

    torch.manual_seed(0)
    net = Counting()
    monkeypatch.setitem(generation.EXTRACTORS, "counting", lambda: net)
    real = torch.randint(0, 255, (300, 3, 8, 8), dtype=torch.uint8)
    metric = generation.GenerationMetric(real, "counting")
    chunks = -(-300 // generation.CHUNK)
    assert chunks > 1 and net.calls == chunks  # one pass a chunk, not one for FID and one for KID
    scores = metric.score(torch.rand(300, 3, 8, 8) * 0.5 - 1)  # darker than the real images
    assert net.calls == 2 * chunks and scores.fid > 0 and scores.real_samples == 300
    same = metric.score(real)
    assert same.fid < scores.fid and abs(same.kid) < scores.kid


def test_within_class_diversity_sees_one_image_per_class_that_overall_diversity_misses():
    from transferlab.metrics.generation import diversity, within_class_diversity

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 10
    centres = torch.randn(10, 16, generator=g) * 3
    real = centres[labels] + torch.randn(200, 16, generator=g)
    collapsed = centres[labels].clone()  # every latent of a class gives the same features
    assert diversity(collapsed) > 0.8 * diversity(real)  # across classes it looks as varied as the data
    assert within_class_diversity(collapsed, labels) < 1e-3
    assert within_class_diversity(real, labels) > 1.0
