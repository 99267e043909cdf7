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


def split_eval_transform(config: dict[str, Any]) -> tuple[Callable, Callable]:
    """:func:`eval_transform` in two halves that compose to exactly the same tensor: the image
    half (PIL resize and crop -> uint8 H x W x 3 array) and the tensor half (uint8 N x H x W x 3
    -> normalised float N x 3 x H x W). The server runs them in different processes."""
    import numpy as np
    from torchvision import transforms as T

    steps = list(eval_transform(config).transforms)
    cut = next(i for i, step in enumerate(steps) if "ToTensor" in type(step).__name__)
    image_half, normalise = T.Compose(steps[:cut]), T.Compose(steps[cut + 1 :])

    def to_pixels(image: Any) -> Any:
        return np.array(image_half(image), dtype=np.uint8)

    def to_tensor(pixels: torch.Tensor) -> torch.Tensor:
        # as ToTensor: uint8 HWC -> float CHW in [0, 1], then the remaining (normalising) steps
        return normalise(pixels.permute(0, 3, 1, 2).float().div(255))

    return to_pixels, to_tensor


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
