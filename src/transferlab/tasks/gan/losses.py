"""The adversarial objective; it owns both phases (as in stylegan2-ada), so the training loop
only asks for the discriminator's and the generator's loss.

Non-saturating BCE (Goodfellow et al. 2014, DCGAN):
:math:`L_D = \\mathrm{softplus}(-D(x)) + \\mathrm{softplus}(D(G(z)))`,
:math:`L_G = \\mathrm{softplus}(-D(G(z)))`.
Hinge (Lim & Ye 2017; SNGAN, BigGAN):
:math:`L_D = \\mathrm{relu}(1 - D(x)) + \\mathrm{relu}(1 + D(G(z)))`, :math:`L_G = -D(G(z))`.
R1 (Mescheder et al. 2018): :math:`\\frac{\\gamma}{2} \\lVert \\nabla_x D(x) \\rVert^2` on real images.
Mode seeking (Mao et al. 2019, MSGAN): for two latents :math:`z_1, z_2` of the same class,
:math:`L_{ms} = \\left(\\frac{\\mathrm{mean}\\,|G(z_1, y) - G(z_2, y)|}{\\mathrm{mean}\\,|z_1 - z_2|} + \\epsilon\\right)^{-1}`,
added to :math:`L_G` with weight :math:`\\lambda`: it grows as a generator stops answering its latent.
Every image the discriminator sees, real or generated, passes through the same augmentation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mode_seeking(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """:math:`L_{ms}` over the pairs (i, i + N/2) of a batch whose halves share their classes."""
    half = fake.shape[0] // 2
    images = (fake[:half] - fake[half : 2 * half]).abs().float().mean()
    latents = (z[:half] - z[half : 2 * half]).abs().float().mean()
    return 1 / (images / latents + 1e-5)


def paired_labels(labels: torch.Tensor) -> torch.Tensor:
    """The classes for a batch of generated images whose second half repeats the first half's."""
    half = labels.shape[0] // 2
    return torch.cat([labels[:half], labels[:half], labels[2 * half :]])


class AdversarialLoss(nn.Module):
    def __init__(
        self,
        discriminator: nn.Module,
        kind: str,
        augment: nn.Module | None,
        r1_gamma: float = 0.0,
        mode_seeking: float = 0.0,
    ):
        super().__init__()
        if kind not in ("bce", "hinge"):
            raise ValueError(f"unknown GAN loss '{kind}'")
        self.discriminator, self.kind, self.r1_gamma = discriminator, kind, r1_gamma
        self.mode_seeking = mode_seeking
        self.augment = augment if augment is not None else nn.Identity()

    def _logits(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.discriminator(self.augment(images), labels).float()

    def discriminator_loss(
        self,
        real: torch.Tensor,
        fake: torch.Tensor,
        labels: torch.Tensor | None,
        fake_labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The discriminator's loss, and detached statistics (tensors: reading them would sync).
        ``fake_labels`` are the classes the fakes were made for (default: ``labels``)."""
        real = real.detach().requires_grad_(self.r1_gamma > 0)
        real_logits = self._logits(real, labels)
        fake_logits = self._logits(fake.detach(), labels if fake_labels is None else fake_labels)
        if self.kind == "bce":
            loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        else:
            loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        stats = {"d_real": real_logits.detach().mean(), "d_fake": fake_logits.detach().mean()}
        if self.r1_gamma > 0:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            penalty = grad.float().pow(2).flatten(1).sum(1).mean()
            loss = loss + self.r1_gamma / 2 * penalty
            stats["r1"] = penalty.detach()
        return loss, stats

    def generator_loss(
        self, fake: torch.Tensor, labels: torch.Tensor | None, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:math:`L_G`, plus :math:`\\lambda L_{ms}` when ``z`` is given (its halves share classes)."""
        logits = self._logits(fake, labels)
        loss = F.softplus(-logits).mean() if self.kind == "bce" else -logits.mean()
        if self.mode_seeking and z is not None:
            loss = loss + self.mode_seeking * mode_seeking(fake, z)
        return loss
