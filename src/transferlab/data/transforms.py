"""Preprocessing from the backbone's pretrained config (timm), and a torch dataset applying it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import Dataset

from transferlab.data.collections import LabeledImages


def eval_transform(config: dict[str, Any]) -> Callable:
    """Resize + centre crop + normalise, exactly as the pretrained weights expect."""
    from timm.data import create_transform

    return create_transform(**_transform_kwargs(config), is_training=False)


def train_transform(config: dict[str, Any], **augment: Any) -> Callable:
    """timm's training transform (random resized crop, flip, optional RandAugment...)."""
    from timm.data import create_transform

    return create_transform(**_transform_kwargs(config), is_training=True, **augment)


def _transform_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    keys = ("input_size", "interpolation", "mean", "std", "crop_pct", "crop_mode")
    kwargs = {k: config[k] for k in keys if k in config}
    kwargs["input_size"] = tuple(kwargs["input_size"])
    kwargs["mean"], kwargs["std"] = tuple(kwargs["mean"]), tuple(kwargs["std"])
    return kwargs


class TransformedImages(Dataset):
    """``(transform(image), label)`` pairs from a labelled collection; picklable for workers."""

    def __init__(self, images: LabeledImages, transform: Callable) -> None:
        self.images = images
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images.image(index)), int(self.images.labels[index])
