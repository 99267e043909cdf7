"""Labelled image collections: what every data source produces, before any transform.

A collection knows how to give image ``i`` as an RGB ``PIL.Image`` and its integer label. Two
kinds cover every source: files on disk (decoded on demand) and in-memory arrays.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from transferlab.data.images import array_to_rgb, load_rgb


class LabeledImages(ABC):
    """Base: ``len``, ``image(i)``, ``labels`` (int64 array) and ``subset(indices)``."""

    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @abstractmethod
    def image(self, index: int) -> Image.Image:
        """Image ``index`` as RGB."""

    @abstractmethod
    def subset(self, indices: Sequence[int] | np.ndarray) -> LabeledImages:
        """A collection of the items at ``indices``, in that order."""


class FileImages(LabeledImages):
    """Images stored as files; decoded (and EXIF-rotated, RGB-converted) on every access."""

    def __init__(self, paths: Sequence[str | Path], labels: Sequence[int] | np.ndarray) -> None:
        self.paths = [str(p) for p in paths]
        self.labels = np.asarray(labels, dtype=np.int64)
        if len(self.paths) != len(self.labels):
            raise ValueError("paths and labels differ in length")

    def image(self, index: int) -> Image.Image:
        return load_rgb(self.paths[index])

    def subset(self, indices: Sequence[int] | np.ndarray) -> FileImages:
        idx = np.asarray(indices, dtype=np.int64)
        return FileImages([self.paths[i] for i in idx], self.labels[idx])


class ArrayImages(LabeledImages):
    """Images held in one N x H x W (gray) or N x H x W x C array (uint8, or scaled on access)."""

    def __init__(self, images: np.ndarray, labels: Sequence[int] | np.ndarray) -> None:
        self.images = np.asarray(images)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.images.ndim not in (3, 4) or len(self.images) != len(self.labels):
            raise ValueError(
                f"expected N x H x W[x C] images and N labels, got {self.images.shape} and {len(self.labels)}"
            )

    def image(self, index: int) -> Image.Image:
        return array_to_rgb(self.images[index])

    def subset(self, indices: Sequence[int] | np.ndarray) -> ArrayImages:
        idx = np.asarray(indices, dtype=np.int64)
        return ArrayImages(self.images[idx], self.labels[idx])


class ConcatImages(LabeledImages):
    """Two collections as one (e.g. real images followed by generated ones)."""

    def __init__(self, first: LabeledImages, second: LabeledImages) -> None:
        self.first, self.second = first, second
        self.labels = np.concatenate([first.labels, second.labels])

    def image(self, index: int) -> Image.Image:
        n = len(self.first)
        return self.first.image(index) if index < n else self.second.image(index - n)

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabeledImages:
        idx = np.asarray(indices, dtype=np.int64)
        n = len(self.first)
        return ConcatImages(self.first.subset(idx[idx < n]), self.second.subset(idx[idx >= n] - n))
