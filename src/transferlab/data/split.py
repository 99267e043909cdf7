"""A stratified, seeded train/validation split.

Written here rather than taken from scikit-learn because ``train_test_split(stratify=...)``
refuses classes with a single image; a few-shot dataset has those, and they belong in training.
"""

from __future__ import annotations

import numpy as np


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
