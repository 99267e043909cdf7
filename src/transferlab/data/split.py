"""Seeded train/validation splits: stratified by class for classification, and the held-out part
of a dense task's data (segment, detect).

Written here rather than taken from scikit-learn because ``train_test_split(stratify=...)``
refuses classes with a single image; a few-shot dataset has those, and they belong in training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from transferlab.errors import DataError, UsageError

Part = TypeVar("Part")  # a split of a dense task: has len() and subset(indices)


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): each class gives ``round(n * val_fraction)`` images to validation,
    at least one when it has two or more, and always keeps at least one for training."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    train_parts, val_parts = [], []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        n_val = round(len(members) * val_fraction)
        n_val = min(max(n_val, 1 if len(members) >= 2 else 0), len(members) - 1)
        val_parts.append(members[:n_val])
        train_parts.append(members[n_val:])
    train = np.sort(np.concatenate(train_parts))
    val = np.sort(np.concatenate(val_parts))
    return train, val


def dense_parts(
    data: Any, images: str | None, targets: str | None, val_images: str | None, val_targets: str | None, *,
    pair: Callable[[Path, Path], Any], find_layout: Callable[[Any], tuple[dict[str, Any], str]], flag: str,
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """(parts, description) of a dense task's data: ``train`` (and ``val``) from ``--images`` with
    their targets (``flag``: ``--masks``, ``--annotations``; ``pair`` reads one such pair of
    folders), or DATA's own layout (``find_layout``)."""
    if images or targets:
        if not (images and targets):
            raise UsageError(f"--images and {flag} go together", "pass both")
        parts = {"train": pair(Path(images), Path(targets))}
        if val_images and val_targets:
            parts["val"] = pair(Path(val_images), Path(val_targets))
        return parts, Path(images).parent.name or str(images)
    if data is not None:
        return find_layout(data)
    raise UsageError("no data was given", f"pass DATA, or --images DIR {flag} DIR")


def evaluation_source(data: Any, images: str | None, targets: str | None, flag: str) -> str:
    """An ``evaluate`` command's data: DATA, or ``--images`` with their targets (``flag``), not
    both; the name its scores are filed under (``test/images`` -> ``test``)."""
    if data is not None and (images or targets):
        raise UsageError(f"both DATA and --images/{flag} were given", "pass one of them")
    if data is None and not (images and targets):
        raise UsageError("no data to evaluate on", f"pass DATA, or --images DIR {flag} DIR")
    where = Path(str(data if data is not None else images))
    return where.parent.name if where.name == "images" else where.name


def held_out_part(parts: dict[str, Part], val_fraction: float, seed: int, description: str, empty: Part,
                  what: str) -> tuple[Part, Part]:  # fmt: skip
    """(train, held out) of a dense task's parts: ``val`` (else ``test``) when DATA has one, else a
    seeded ``val_fraction`` of ``train``; ``val_fraction`` 0 holds nothing out (``empty``).
    ``what`` names the files a part is made of, for the messages ("images and masks")."""
    train = parts.get("train")
    if not train:
        raise DataError(f"{description} has no training images", f"add {what} to its training part")
    given = [parts[p] for p in ("val", "test") if p in parts]
    if given and not len(given[0]):
        raise DataError(f"the held-out part of {description} is empty", f"add {what} to it")
    if given:
        return train, given[0]
    if val_fraction == 0.0:  # nothing is held out: everything is for evaluation
        return train, empty
    if not 0 < val_fraction < 1 or len(train) < 2:
        raise DataError(f"{description} has {len(train)} image(s) and no held-out part to split off",
                        f"give a held-out part, or more {what} with --val-fraction 0.2")  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(train)).tolist()
    held = max(1, round(len(train) * val_fraction))
    return train.subset(order[held:]), train.subset(order[:held])
