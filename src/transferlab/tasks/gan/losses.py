"""The adversarial objective; it owns both phases (as in stylegan2-ada), so the training loop
only asks for the discriminator's and the generator's loss.

Non-saturating BCE (Goodfellow et al. 2014, DCGAN):
:math:`L_D = \\mathrm{softplus}(-D(x)) + \\mathrm{softplus}(D(G(z)))`,
:math:`L_G = \\mathrm{softplus}(-D(G(z)))`.
Hinge (Lim & Ye 2017; SNGAN, BigGAN):
:math:`L_D = \\mathrm{relu}(1 - D(x)) + \\mathrm{relu}(1 + D(G(z)))`, :math:`L_G = -D(G(z))`.
R1 (Mescheder et al. 2018): :math:`\\frac{\\gamma}{2} \\lVert \\nabla_x D(x) \\rVert^2` on real images.
Every image the discriminator sees, real or generated, passes through the same augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.engine.batches import BatchDraw
from transferlab.engine.fabric import inner_gradients


class AdversarialLoss(nn.Module):
    def __init__(
        self,
        discriminator: nn.Module,
        kind: str,
        augment: nn.Module | None,
        r1_gamma: float = 0.0,
    ):
        super().__init__()
        if kind not in ("bce", "hinge"):
            raise ValueError(f"unknown GAN loss '{kind}'")
        self.discriminator, self.kind, self.r1_gamma = discriminator, kind, r1_gamma
        self.augment = augment

    def _logits(self, images: torch.Tensor, labels: torch.Tensor | None, draw: BatchDraw | None) -> torch.Tensor:
        seen = images if self.augment is None else self.augment(images, draw)
        return self.discriminator(seen, labels).float()

    def discriminator_loss(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        labels: torch.Tensor | None,
        draw: BatchDraw | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's loss, and detached statistics (tensors: reading them would sync).
        ``draw`` gives the augmentation's random parameters (the step's share of the batch)."""
        real = real.detach().requires_grad_(self.r1_gamma > 0)
        real_logits = self._logits(real, labels, draw)
        fake_logits = self._logits(fake.detach(), labels, draw)
        if self.kind == "bce":
            loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        else:
            loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        stats = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        if self.r1_gamma > 0:
            with inner_gradients():
                (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            penalty = grad.float().pow(2).flatten(1).sum(1).mean()
            loss = loss + self.r1_gamma / 2 * penalty
            stats["r1"] = penalty.detach()
        return loss, stats

    def generator_loss(
        self, fake: torch.Tensor, labels: torch.Tensor | None, draw: BatchDraw | None = None
    ) -> torch.Tensor:
        logits = self._logits(fake, labels, draw)
        return F.softplus(-logits).mean() if self.kind == "bce" else -logits.mean()
