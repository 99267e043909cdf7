"""Pixel conversions every task shares: network outputs in [-1, 1] (GANs) or [0, 1] (style,
translation) -> uint8 pixels, as tensors (N x C x H x W) or as images (H x W x C numpy); the size a
whole image is run at by a convolutional network."""

from __future__ import annotations

from typing import Any

import torch


def signed_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8 in [0, 255], rounded, same layout."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def unit_to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> uint8 in [0, 255], rounded, same layout."""
    return (images.float().clamp(0, 1) * 255).round().to(torch.uint8)


def channels_last_array(pixels: torch.Tensor) -> Any:
    """uint8 C x H x W (or N x C x H x W) -> a numpy H x W x C (N x H x W x C) array on the CPU."""
    return pixels.movedim(-3, -1).cpu().numpy()


def whole_image_size(height: int, width: int, side: int, multiple: int = 32) -> tuple[int, int]:
    """The size a whole image (no crop) is run at: its shorter side ``side``, the aspect kept,
    both sides multiples of ``multiple`` (a convolutional encoder's coarsest stride)."""
    factor = side / min(height, width)
    return tuple(max(multiple, round(n * factor / multiple) * multiple) for n in (height, width))  # type: ignore[return-value]
