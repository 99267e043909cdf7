"""The images of style transfer: files read as [0, 1] tensors with the network's size checks,
and tensors written back as pictures (shared by the optimisation and the feed-forward network)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from transferlab.data.images import open_image_or_fail
from transferlab.errors import DataError
from transferlab.pixels import channels_last_array, unit_to_uint8


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> 1 x 3 x H x W float tensor in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """1 x 3 x H x W tensor in [0, 1] -> RGB PIL image."""
    return Image.fromarray(channels_last_array(unit_to_uint8(tensor[0])))


def load_image_tensor(path: str | Path, role: str, min_size: int, size: int | None = None) -> torch.Tensor:
    """An image as a [0, 1] tensor; too small for the network is an error, larger than ``size`` a warning."""
    image = open_image_or_fail(path)
    if min(image.size) < min_size:
        raise DataError(
            f"the {role} image {path} is {image.width}x{image.height}; the network needs at least {min_size} px a side",
            "use a larger image",
        )
    if size is not None and max(image.size) > size:
        warnings.warn(
            f"the {role} image {path} ({image.width}x{image.height}) is resized to {size} px "
            "on its longer side (--size)",
            stacklevel=3,
        )
    return to_tensor(image)
