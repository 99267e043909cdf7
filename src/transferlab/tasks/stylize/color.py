"""Colour preservation (Gatys et al. 2017, "luminance-only transfer"): stylise the luminance,
keep the content's chroma. YIQ separates luminance (Y) from chroma (I, Q) linearly."""

from __future__ import annotations

import torch

RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", RGB_TO_YIQ.to(rgb), rgb)


def to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(RGB_TO_YIQ).to(yiq), yiq)


def luminance_as_rgb(rgb: torch.Tensor) -> torch.Tensor:
    return to_yiq(rgb)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The style's luminance, shifted and scaled to the content's mean and spread, as grey RGB."""
    ys, yc = to_yiq(style)[:, :1], to_yiq(content)[:, :1]
    matched = (ys - ys.mean()) / ys.std().clamp_min(1e-6) * yc.std() + yc.mean()
    return matched.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def recombine(stylised_grey: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The stylised luminance with the content's chroma (I, Q), back in RGB."""
    yiq = to_yiq(content)
    yiq = torch.cat([stylised_grey.mean(dim=1, keepdim=True), yiq[:, 1:]], dim=1)
    return to_rgb(yiq).clamp(0, 1)
