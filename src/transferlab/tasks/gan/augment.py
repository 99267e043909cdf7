"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to real *and* generated
images, in the discriminator's and the generator's steps, so a discriminator trained on few
images cannot memorise them while the generator still learns the un-augmented distribution.

Written here because no maintained library ships these three ops as a differentiable,
per-sample, batched function (kornia's augmentations differ in ranges and are a heavy dependency).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from transferlab.engine.batches import BatchDraw
from transferlab.errors import UsageError

POLICIES = ("color", "translation", "cutout")


def color(x: torch.Tensor, draw: BatchDraw) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), per image."""
    brightness, saturation, contrast = draw.uniform(3, 1, 1, 1).to(x).unbind(1)
    x = x + (brightness - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (saturation * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (contrast + 0.5) + mean


def translation(x: torch.Tensor, draw: BatchDraw, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, whole pixels, zeros filling in."""
    n, _, h, w = x.shape
    reach = torch.tensor([int(w * ratio), int(h * ratio)])
    shift = (draw.uniform(2) * (2 * reach + 1)).floor().sub(reach).to(x)  # uniform in -reach..reach
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * shift[:, 0] / w  # whole-pixel shifts land on pixel centres: exact
    theta[:, 1, 2] = -2 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def cutout(x: torch.Tensor, draw: BatchDraw, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of ``ratio`` times the image size in each image."""
    _, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    corner = draw.uniform(2) * torch.tensor([h + 1 - ch % 2, w + 1 - cw % 2])
    top, left = (corner.floor().long() - torch.tensor([ch // 2, cw // 2])).to(x.device).view(-1, 2, 1, 1).unbind(1)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS = {"color": color, "translation": translation, "cutout": cutout}


class DiffAugment(torch.nn.Module):
    """Applies the ops of ``policy`` (a comma-separated subset of color, translation, cutout) in order."""

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        super().__init__()
        self.ops = [OPS[name] for name in parse_policy(policy)]

    def forward(self, x: torch.Tensor, draw: BatchDraw | None = None) -> torch.Tensor:
        """Augment ``x``; its random parameters come from ``draw`` (the step's share of the global
        batch under data parallelism), else from the global generator."""
        draw = draw or BatchDraw.local(len(x))
        for op in self.ops:
            x = op(x, draw)
        return x


def parse_policy(policy: str) -> list[str]:

    names = [p.strip() for p in policy.split(",") if p.strip() and p.strip() != "none"]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise UsageError(f"unknown DiffAugment op(s): {', '.join(unknown)}", f"use a subset of {','.join(POLICIES)}")
    return names
