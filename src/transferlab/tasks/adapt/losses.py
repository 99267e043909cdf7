"""Domain-adaptation objectives, each a small ``nn.Module`` whose docstring states its math.

All take source and target features (and, for CDAN, predictions) of one step and return the
alignment term that is added to the source classification loss:
:math:`L = L_{cls}(x_s, y_s) + \\lambda L_{align}`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.coeff * grad, None


class GradientReversal(nn.Module):
    r"""Identity forward, :math:`-c\,\partial L/\partial x` backward (Ganin & Lempitsky 2015), with
    :math:`c = 2 / (1 + e^{-10 p}) - 1` ramping from 0 to 1 over training progress :math:`p`."""

    def __init__(self) -> None:
        super().__init__()
        self.progress = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coeff = 2.0 / (1.0 + math.exp(-10.0 * self.progress)) - 1.0
        return _ReverseGradient.apply(x, coeff)


def domain_discriminator(in_features: int, hidden: int = 1024) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, 1),
    )  # fmt: skip


class DomainAdversarialLoss(nn.Module):
    r"""DANN (Ganin et al. 2016): a discriminator :math:`D` tells source from target features
    through a gradient-reversal layer, so the feature extractor learns to make them alike:
    :math:`L_{align} = \mathrm{BCE}(D(R(f_s)), 1) + \mathrm{BCE}(D(R(f_t)), 0)`."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.reverse = GradientReversal()
        self.discriminator = domain_discriminator(in_features)

    def domain_logits(self, f_s: torch.Tensor, f_t: torch.Tensor) -> torch.Tensor:
        return self.discriminator(self.reverse(torch.cat([f_s, f_t]))).flatten()

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, *_: torch.Tensor) -> torch.Tensor:
        logits = self.domain_logits(f_s, f_t)
        domains = torch.cat([torch.ones(len(f_s)), torch.zeros(len(f_t))]).to(logits)
        return F.binary_cross_entropy_with_logits(logits, domains)


class ConditionalDomainAdversarialLoss(DomainAdversarialLoss):
    r"""CDAN (Long et al. 2018): the discriminator sees the multilinear map
    :math:`h = f \otimes g` of features :math:`f` and class predictions :math:`g = \mathrm{softmax}`,
    so it aligns the joint distribution of features and classes; with entropy conditioning
    (CDAN+E) each example is weighted by :math:`1 + e^{-H(g)}`, normalised over the batch."""

    def __init__(self, in_features: int, num_classes: int, entropy: bool = True) -> None:
        super().__init__(in_features * num_classes)
        self.entropy = entropy

    def forward(
        self, f_s: torch.Tensor, f_t: torch.Tensor, logits_s: torch.Tensor, logits_t: torch.Tensor
    ) -> torch.Tensor:
        g = torch.cat([logits_s, logits_t]).softmax(dim=1).detach()
        f = torch.cat([f_s, f_t])
        h = torch.bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1)
        logits = self.discriminator(self.reverse(h)).flatten()
        domains = torch.cat([torch.ones(len(f_s)), torch.zeros(len(f_t))]).to(logits)
        weight = None
        if self.entropy:
            entropy = -(g * (g + 1e-5).log()).sum(dim=1)
            w = 1.0 + torch.exp(-entropy)
            weight = torch.cat([w[: len(f_s)] / w[: len(f_s)].sum(), w[len(f_s) :] / w[len(f_s) :].sum()]) * len(w) / 2
        return F.binary_cross_entropy_with_logits(logits, domains, weight=weight)


class CorrelationAlignmentLoss(nn.Module):
    r"""Deep CORAL (Sun & Saenko 2016), non-adversarial: match the first and second moments,
    :math:`L_{align} = \lVert \mu_s - \mu_t \rVert^2 / d + \lVert C_s - C_t \rVert_F^2 / d^2`
    for feature means :math:`\mu` and covariances :math:`C` of dimension :math:`d` (means of the
    squared differences, so the term's scale does not grow with the feature width)."""

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, *_: torch.Tensor) -> torch.Tensor:
        mean_s, mean_t = f_s.mean(0, keepdim=True), f_t.mean(0, keepdim=True)
        cov_s = (f_s - mean_s).T @ (f_s - mean_s) / max(len(f_s) - 1, 1)
        cov_t = (f_t - mean_t).T @ (f_t - mean_t) / max(len(f_t) - 1, 1)
        return (mean_s - mean_t).pow(2).mean() + (cov_s - cov_t).pow(2).mean()
