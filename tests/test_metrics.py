"""Metrics are asked for by name, one way for all of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlab import metrics
from transferlab.errors import UsageError


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
