"""Pixel conversions every task shares: network outputs in [-1, 1] (GANs) or [0, 1] (style,
translation) -> uint8 pixels, as tensors (N x C x H x W) or as images (H x W x C numpy)."""

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
