"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to real *and* generated
images, in the discriminator's and the generator's steps, so a discriminator trained on few
images cannot memorise them while the generator still learns the un-augmented distribution.

Written here because no maintained library ships these three ops as a differentiable,
per-sample, batched function (kornia's augmentations differ in ranges and are a heavy dependency).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5), per image."""
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    if x.shape[1] > 1:
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, whole pixels, zeros filling in."""
    n, _, h, w = x.shape
    shift = torch.stack(
        [
            torch.randint(-int(w * ratio), int(w * ratio) + 1, (n,), device=x.device),
            torch.randint(-int(h * ratio), int(h * ratio) + 1, (n,), device=x.device),
        ],
        dim=1,
    ).to(x.dtype)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * shift[:, 0] / w  # whole-pixel shifts land on pixel centres: exact
    theta[:, 1, 2] = -2 * shift[:, 1] / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random square of ``ratio`` times the image size in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + 1 - ch % 2, (n, 1, 1), device=x.device) - ch // 2
    left = torch.randint(0, w + 1 - cw % 2, (n, 1, 1), device=x.device) - cw // 2
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            x = op(x)
        return x


def parse_policy(policy: str) -> list[str]:
    from transferlab.errors import UsageError

    names = [p.strip() for p in policy.split(",") if p.strip() and p.strip() != "none"]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise UsageError(f"unknown DiffAugment op(s): {', '.join(unknown)}", f"use a subset of {','.join(POLICIES)}")
    return names
