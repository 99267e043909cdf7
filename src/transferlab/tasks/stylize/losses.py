"""The losses of neural style transfer (Gatys et al. 2016), each a small ``nn.Module``."""

from __future__ import annotations

from collections.abc import Callable

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


def mixed_grams(
    layers: Callable[[torch.Tensor], list[torch.Tensor]], styles: list[torch.Tensor], mix: list[float]
) -> list[torch.Tensor]:
    r"""Style targets :math:`G^s_l = \sum_s a_s G_l(s)`: each layer's Gram matrices of several style
    images, mixed with weights :math:`a_s` (summing to 1)."""
    with torch.no_grad():
        per_style = [[gram(f) for f in layers(s)] for s in styles]
    return [sum(a * grams[i] for a, grams in zip(mix, per_style)) for i in range(len(per_style[0]))]


class TotalVariation(nn.Module):
    r"""Total variation, :math:`\mathrm{mean}\,|x_{i+1,j} - x_{i,j}| + \mathrm{mean}\,|x_{i,j+1} - x_{i,j}|`:
    discourages high-frequency noise."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (
            image[..., :, 1:] - image[..., :, :-1]
        ).abs().mean()


def _relative_error(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Per-sample :math:`\lVert x - t \rVert^2 / \lVert t \rVert^2` (a batch of 1 target broadcasts)."""
    dims = tuple(range(1, x.dim()))
    denominator = target.pow(2).sum(dim=dims).clamp_min(1e-12)
    return (x - target).pow(2).sum(dim=dims) / denominator


class PerceptualLoss(nn.Module):
    r"""The style-transfer objective on a frozen feature network, in relative form:

    .. math::
        L(y; x) = \alpha \frac{1}{L}\sum_l \frac{\lVert G_l(y) - G^s_l \rVert^2}{\lVert G^s_l \rVert^2}
                + \beta \frac{\lVert F_c(y) - F_c(x) \rVert^2}{\lVert F_c(x) \rVert^2} + \gamma\,\mathrm{TV}(y)

    for an output :math:`y`, its content image :math:`x`, the (mixed) style Gram targets :math:`G^s_l`
    of the style layers :math:`l = 1..L` (the network's ``style_layers``) and the content layer :math:`c`.
    Dividing each error by its target's magnitude makes the weights
    mean the same for every feature network and smoothing mode. Averaged over a batch; used by the
    optimisation (one image) and by feed-forward training (batches of content images).
    """

    def __init__(
        self,
        layers: Callable[[torch.Tensor], list[torch.Tensor]],
        content_layer: int,
        style_grams: list[torch.Tensor],
        weights: tuple[float, float, float],
        style_layers: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        self.layers, self.content_layer = layers, content_layer
        self.style_layers = tuple(range(len(style_grams))) if style_layers is None else tuple(style_layers)
        self.style_grams = [style_grams[i].detach() for i in self.style_layers]
        self.style_weight, self.content_weight, self.tv_weight = weights
        self.tv = TotalVariation()

    def content_target(self, content: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.layers(content)[self.content_layer]

    def forward(
        self, image: torch.Tensor, content_target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, style, content) losses, each a scalar."""
        feats = self.layers(image)
        style = sum(
            _relative_error(gram(feats[i]), t).mean() for i, t in zip(self.style_layers, self.style_grams)
        ) / len(self.style_grams)
        content = _relative_error(feats[self.content_layer], content_target).mean()
        total = self.style_weight * style + self.content_weight * content
        if self.tv_weight:
            total = total + self.tv_weight * self.tv(image)
        return total, style, content
