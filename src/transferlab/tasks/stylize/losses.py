"""The losses of neural style transfer (Gatys et al. 2016), each a small ``nn.Module``."""

from __future__ import annotations

import torch
from torch import nn


def smooth(features: torch.Tensor, mode: str) -> torch.Tensor:
    r"""Activation smoothing (SWAG; Wang, Li & Vasconcelos, CVPR 2021).

    Non-VGG networks (residual ones in particular) have peaky, low-entropy activations whose
    Gram matrices are dominated by a few channels, which stylises poorly. A softmax raises the
    entropy. ``"channel"``: at every position, :math:`\sigma(F)_{c,p} = C\,\mathrm{softmax}_c(F_{:,p})_c`
    (the factor :math:`C` keeps values near 1). ``"all"``: one softmax over all :math:`C \cdot HW`
    values of a layer, times :math:`C \cdot HW`. ``"none"``: activations as they are.
    """
    if mode == "none":
        return features
    n, c, h, w = features.shape
    if mode == "channel":
        return features.softmax(dim=1) * c
    if mode == "all":
        return (features.flatten(1).softmax(dim=1) * (c * h * w)).view(n, c, h, w)
    raise ValueError(f"unknown smoothing '{mode}'")


def gram(features: torch.Tensor) -> torch.Tensor:
    r""":math:`G = F F^\top / (C H W)` for activations :math:`F` reshaped to :math:`C \times HW`."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class StyleLoss(nn.Module):
    r""":math:`\sum_l w_l \lVert G_l(x) - \sum_s a_s G_l(s) \rVert_F^2`: Gram matrices of the image
    against the (weighted mix of) style Gram matrices, per layer, each layer weighted equally."""

    def __init__(self, targets: list[torch.Tensor]) -> None:
        super().__init__()
        self.targets = [t.detach() for t in targets]

    def forward(self, grams: list[torch.Tensor]) -> torch.Tensor:
        return sum((g - t).pow(2).sum() for g, t in zip(grams, self.targets)) / len(self.targets)


class ContentLoss(nn.Module):
    r""":math:`\mathrm{mean}\,(F_l(x) - F_l(c))^2` at the content layer :math:`l`."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target.detach()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.target).pow(2).mean()


class TotalVariation(nn.Module):
    r"""Total variation, :math:`\mathrm{mean}\,|x_{i+1,j} - x_{i,j}| + \mathrm{mean}\,|x_{i,j+1} - x_{i,j}|`:
    discourages high-frequency noise."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (
            image[..., :, 1:] - image[..., :, :-1]
        ).abs().mean()
