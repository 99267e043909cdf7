"""Training batches: resident tensors and streaming, determinism and data-parallel sharding."""

from __future__ import annotations

import numpy as np
import torch

from transferlab.data.collections import ArrayImages
from transferlab.data.loaders import ResidentBatches, StreamingBatches, decode_all, make_batches

CONFIG = {
    "input_size": (3, 32, 32),
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
}


def _images(n: int = 20, size: int = 16) -> ArrayImages:
    rng = np.random.default_rng(0)
    return ArrayImages(rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 4)


def test_small_uniform_images_stay_at_native_size_and_are_resized_per_batch():
    batches = make_batches(_images(), CONFIG, torch.device("cpu"), resident=True)
    assert isinstance(batches, ResidentBatches) and batches.pixels.shape == (20, 3, 16, 16)
    x, y = next(batches.batches(8, train=False))
    assert x.shape == (8, 3, 32, 32) and y.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert x.min() >= -1.01 and x.max() <= 1.01  # normalised with mean/std 0.5


def test_epochs_are_reproducible_and_differ_from_each_other():
    batches = make_batches(_images(), CONFIG, torch.device("cpu"), resident=True)
    first = [x for x, _ in batches.batches(8, train=True, seed=1, epoch=0)]
    again = [x for x, _ in batches.batches(8, train=True, seed=1, epoch=0)]
    other = [x for x, _ in batches.batches(8, train=True, seed=1, epoch=1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], other[0])


def test_two_ranks_see_exactly_the_single_process_batch():
    batches = make_batches(_images(), CONFIG, torch.device("cpu"), resident=True)
    single = list(batches.batches(8, train=True, seed=3, epoch=2))
    rank0 = list(batches.batches(8, train=True, seed=3, epoch=2, rank=0, world=2))
    rank1 = list(batches.batches(8, train=True, seed=3, epoch=2, rank=1, world=2))
    assert len(single) == len(rank0) == len(rank1) == 2  # drop_last: 20 images -> 2 global batches
    for (x, y), (x0, y0), (x1, y1) in zip(single, rank0, rank1):
        assert torch.allclose(x[0::2], x0) and torch.allclose(x[1::2], x1)
        assert torch.equal(y[0::2], y0) and torch.equal(y[1::2], y1)


def test_large_images_are_stored_at_training_size():
    images = ArrayImages(np.zeros((3, 50, 70, 3), np.uint8), np.array([0, 1, 0]))
    assert decode_all(images, 32).shape == (3, 3, 32, 32)


def test_streaming_batches_have_the_same_interface():
    batches = make_batches(_images(), CONFIG, torch.device("cpu"), workers=0, resident=False)
    assert isinstance(batches, StreamingBatches)
    x, y = next(batches.batches(8, train=True, seed=0, epoch=0))
    assert x.shape == (8, 3, 32, 32) and len(y) == 8
    assert sum(len(y) for _, y in batches.batches(8, train=False)) == 20


def test_augmix_is_seeded_sharded_and_changes_only_training_images():
    plain = make_batches(_images(), CONFIG, torch.device("cpu"), resident=True)
    mixed = make_batches(_images(), CONFIG, torch.device("cpu"), resident=True, augmix=True)
    first = [x for x, _ in mixed.batches(8, train=True, seed=1, epoch=0)]
    again = [x for x, _ in mixed.batches(8, train=True, seed=1, epoch=0)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[0], next(plain.batches(8, train=True, seed=1, epoch=0))[0])
    single = list(mixed.batches(8, train=True, seed=3, epoch=2))
    rank1 = list(mixed.batches(8, train=True, seed=3, epoch=2, rank=1, world=2))
    assert all(torch.allclose(x[1::2], x1) for (x, _), (x1, _) in zip(single, rank1))
    assert torch.equal(next(mixed.batches(8, train=False))[0], next(plain.batches(8, train=False))[0])
    streaming = make_batches(_images(), CONFIG, torch.device("cpu"), workers=0, resident=False, augmix=True)
    assert "AugMix" in repr(streaming.train_set.transform)
