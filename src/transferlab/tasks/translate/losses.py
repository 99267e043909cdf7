"""The translation loss, which owns its generator and discriminator phases (as the GAN task's)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.metrics.image import Lite0Distance


class TranslationLoss(nn.Module):
    r"""pix2pix's objective with a perceptual term (DeOldify's recipe without the separate phases):

    .. math::
        L_G = \lambda_1 \lVert G(x) - y \rVert_1 + \lambda_p\, d_{Lite0}(G(x), y)
              + \lambda_{adv}\, \mathrm{BCE}(D(x, G(x)), 1)

        L_D = \mathrm{BCE}(D(x, y), 1) + \mathrm{BCE}(D(x, G(x)), 0)

    :math:`d_{Lite0}` is :class:`~transferlab.metrics.image.Lite0Distance` (frozen ImageNet
    features); the adversarial terms exist only with a discriminator ``D``."""

    def __init__(self, l1: float, perceptual: float, adversarial: float, discriminator: nn.Module | None) -> None:
        super().__init__()

        self.l1, self.perceptual, self.adversarial = l1, perceptual, adversarial
        self.distance = Lite0Distance() if perceptual > 0 else None
        self.discriminator = discriminator

    def generator_loss(self, x: torch.Tensor, fake: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = {"l1": F.l1_loss(fake, y)}
        total = self.l1 * terms["l1"]
        if self.distance is not None:
            terms["perceptual"] = self.distance(fake, y).mean()
            total = total + self.perceptual * terms["perceptual"]
        if self.discriminator is not None:
            logits = self.discriminator(x, fake)
            terms["adversarial"] = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
            total = total + self.adversarial * terms["adversarial"]
        return {"total": total, **terms}

    def discriminator_loss(self, x: torch.Tensor, fake: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        real_logits, fake_logits = self.discriminator(x, y), self.discriminator(x, fake.detach())
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        return real + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
