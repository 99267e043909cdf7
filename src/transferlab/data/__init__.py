"""The data layer: one entry point from a user's DATA to checked train/val collections.

``load_data("photos/")``, ``load_data("set.zip")``, ``load_data("labels.csv")``,
``load_data("digits")`` and ``from_arrays(x, y)`` all return a :class:`DatasetSplits`. Files are
fully decoded once up front, so that a bad file is reported before training, not mid-epoch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferlab.data.collections import ArrayImages, FileImages, LabeledImages
from transferlab.data.images import BadImage, SkippedImagesWarning, load_rgb, warn_skipped
from transferlab.data.sources import RawData, find_source, labels_to_indices
from transferlab.data.split import stratified_split
from transferlab.errors import DataError

__all__ = ["DatasetSplits", "SkippedImagesWarning", "from_arrays", "load_data", "load_images", "load_labeled"]


@dataclass
class DatasetSplits:
    train: LabeledImages
    val: LabeledImages
    classes: list[str]
    description: str
    val_origin: str  # "given" or e.g. "stratified 20% split, seed 0"
    skipped: list[BadImage] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def few_shot(self, shots: int, seed: int = 0) -> DatasetSplits:
        """Keep at most ``shots`` training images per class (chosen with ``seed``); validation unchanged."""
        if shots < 1:
            raise DataError(f"--shots must be at least 1, got {shots}", "e.g. --shots 10")
        rng = np.random.default_rng(seed)
        keep = []
        for label in range(self.num_classes):
            members = np.flatnonzero(self.train.labels == label)
            keep.extend(rng.permutation(members)[:shots].tolist())
        subset = self.train.subset(np.sort(np.array(keep, dtype=np.int64)))
        return DatasetSplits(
            subset, self.val, self.classes, f"{self.description}, {shots}-shot", self.val_origin, self.skipped
        )

    def summary(self) -> str:
        return (
            f"{self.description}: {len(self.train)} train / {len(self.val)} val images, "
            f"{self.num_classes} classes (validation: {self.val_origin})"
        )


def _scan(images: FileImages) -> tuple[FileImages, list[BadImage]]:
    """Decode every file (threads: Pillow releases the GIL) and keep the good ones."""
    from transferlab.progress import track

    def check(index: int) -> BadImage | None:
        try:
            load_rgb(images.paths[index])
        except BadImage as bad:
            return bad
        return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(track(pool.map(check, range(len(images))), "checking images", total=len(images)))
    bad = [r for r in results if r is not None]
    good = [i for i, r in enumerate(results) if r is None]
    return images.subset(good), bad


def _verified(images: LabeledImages | None, strict: bool, skipped: list[BadImage]) -> LabeledImages | None:
    if not isinstance(images, FileImages):
        return images
    good, bad = _scan(images)
    if bad and strict:
        raise DataError(
            f"{len(bad)} file(s) are not usable images, e.g. {bad[0].path}: {bad[0].reason}",
            "fix or remove them, or leave out --strict to skip them with a warning",
        )
    skipped.extend(bad)
    return good


def _check_classes(images: LabeledImages, classes: list[str], what: str, skipped: list[BadImage]) -> None:
    if len(images) == 0:
        note = f" ({len(skipped)} unusable file(s) skipped)" if skipped else ""
        raise DataError(
            f"the {what} set holds no usable images{note}", "point DATA at a folder, archive or CSV of images"
        )
    if len(classes) < 2:
        raise DataError(
            f"only one class ({classes[0] if classes else 'none'}) was found; a classifier needs two or more",
            "add a folder (or CSV label) per class",
        )
    counts = np.bincount(images.labels, minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(
            f"class(es) {', '.join(map(repr, empty))} have no usable {what} images",
            "add images to them or remove those classes",
        )


def _finish(raw: RawData, val_fraction: float, seed: int, strict: bool) -> DatasetSplits:
    skipped: list[BadImage] = []
    train = _verified(raw.train, strict, skipped)
    val = _verified(raw.val, strict, skipped)
    warn_skipped(skipped, stacklevel=4)
    _check_classes(train, raw.classes, "training", skipped)
    if val is not None and len(val) == 0:
        raise DataError(
            "the validation set holds no usable images", "add images to it, or leave it out to split one off"
        )
    if val is not None:
        return DatasetSplits(train, val, raw.classes, raw.description, "given", skipped)
    train_idx, val_idx = stratified_split(train.labels, val_fraction, seed)
    origin = f"stratified {val_fraction:.0%} split, seed {seed}"
    return DatasetSplits(train.subset(train_idx), train.subset(val_idx), raw.classes, raw.description, origin, skipped)


def load_data(
    data: str | Path,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    strict: bool = False,
    data_root: str | Path | None = None,
) -> DatasetSplits:
    """Turn DATA (folder, archive, CSV or built-in name) into checked train/val collections.

    Without a given validation set, a stratified ``val_fraction`` is split off with ``seed``.
    Unusable files are skipped with one :class:`SkippedImagesWarning` (an error if ``strict``).
    """
    spec = str(data)
    raw = find_source(spec).read(spec, Path(data_root) if data_root else None)
    return _finish(raw, val_fraction, seed, strict)


def load_labeled(
    data: str | Path, *, strict: bool = False, data_root: str | Path | None = None
) -> tuple[LabeledImages, list[str]]:
    """DATA's validation/test part if it has one, else all of it, checked (for evaluation)."""
    spec = str(data)
    raw = find_source(spec).read(spec, Path(data_root) if data_root else None)
    skipped: list[BadImage] = []
    images = _verified(raw.val if raw.val is not None else raw.train, strict, skipped)
    warn_skipped(skipped, stacklevel=3)
    if len(images) == 0:
        raise DataError(f"{spec} holds no usable images", "point DATA at a folder, archive or CSV of images")
    return images, raw.classes


def _concat(a: LabeledImages, b: LabeledImages) -> LabeledImages:
    if isinstance(a, FileImages) and isinstance(b, FileImages):
        return FileImages(a.paths + b.paths, np.concatenate([a.labels, b.labels]))
    if isinstance(a, ArrayImages) and isinstance(b, ArrayImages) and a.images.shape[1:] == b.images.shape[1:]:
        return ArrayImages(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]))
    return a  # different storage: the training part alone


def load_images(
    data: str | Path, *, strict: bool = False, data_root: str | Path | None = None
) -> tuple[LabeledImages, list[str], str]:
    """Every usable image of DATA (training and validation parts together), with labels if it has
    classes: for generative tasks. A flat folder or archive of images is one class."""
    from transferlab.data.sources import read_any_images

    spec = str(data)
    raw = read_any_images(spec, Path(data_root) if data_root else None)
    skipped: list[BadImage] = []
    images = _verified(raw.train, strict, skipped)
    if raw.val is not None:
        images = _concat(images, _verified(raw.val, strict, skipped))
    warn_skipped(skipped, stacklevel=3)
    if len(images) == 0:
        note = f" ({len(skipped)} unusable file(s) skipped)" if skipped else ""
        raise DataError(f"{spec} holds no usable images{note}", "point DATA at a folder or archive of images")
    return images, raw.classes, raw.description


def from_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    *,
    classes: list[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplits:
    """In-memory images (N x H x W or N x H x W x C) and labels as :class:`DatasetSplits`."""
    if (val_images is None) != (val_labels is None):
        raise DataError("validation images and labels must be given together", "pass both or neither")
    y, names = labels_to_indices(labels, classes)
    train = ArrayImages(images, y)
    val = None
    if val_images is not None:
        index = {name: i for i, name in enumerate(names)}
        raw_val = np.asarray(val_labels)
        if classes is None:
            unknown = sorted({str(v) for v in raw_val.tolist()} - set(index))
            if unknown:
                raise DataError(
                    f"validation label(s) {', '.join(unknown)} never occur in training",
                    "fix the labels, or move those images to training",
                )
            raw_val = np.array([index[str(v)] for v in raw_val.tolist()])
        val = ArrayImages(val_images, labels_to_indices(raw_val, names)[0])
    return _finish(RawData(train, val, names, "arrays"), val_fraction, seed, strict=False)
