"""Generators and discriminators, behind one small interface and a registry (``--arch``).

Every generator maps ``(z, labels)`` to images in [-1, 1]; every discriminator maps
``(images, labels)`` to one logit per image and exposes ``blocks`` (lowest first), the units that
FreezeD (Mo et al. 2020) freezes. Class-conditional models take integer labels: the generators
use them in class BatchNorm (:class:`ClassBatchNorm`); the ResNet discriminator adds a projection
term (Miyato & Koyama 2018), :math:`D(x, y) = \\psi(\\phi(x)) + \\langle e_y, \\phi(x) \\rangle` for
pooled features :math:`\\phi(x)`, and the DCGAN one reads one-hot class planes beside the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

RESOLUTIONS = (32, 64, 128)


@dataclass(frozen=True)
class Architecture:
    name: str
    loss: str  # "bce" (non-saturating) or "hinge"
    default_width: int
    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    ema: bool  # keep an exponential moving average of the generator


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    ARCHITECTURES[arch.name] = arch
    return arch


CLASS_LR_MULT = 10.0


class ClassBatchNorm(nn.Module):
    r"""BatchNorm whose scale and shift are the class's (conditional BatchNorm, de Vries et al. 2017;
    the generators of SNGAN-projection and BigGAN): :math:`\gamma_y \hat{x} + \beta_y`.

    Why not concatenate a class embedding to the latent: behind the generator's BatchNorm the class
    code and z then share one fixed variance budget, and as the discriminator's class term pulled
    the class weights up, z's share shrank: a conditional DCGAN on MNIST drew one image per class
    (within-class pixel spread 0.02 against the real digits' 0.30 after 4,000 steps). Here the
    statistics come from z alone and the class only rescales them.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.conditional = num_classes > 1
        self.norm = nn.BatchNorm2d(channels, affine=not self.conditional)
        if self.conditional:
            self.gain = nn.Embedding(num_classes, channels)
            self.shift = nn.Embedding(num_classes, channels)
            nn.init.zeros_(self.gain.weight)
            nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(x)
        if not self.conditional or labels is None:
            return x
        # Adam moves each parameter about lr a step: x10 lets a class's gain and shift travel
        # ~2 in 1,000 steps at 2e-4 (at x1 the classes barely separated: 21% class consistency)
        gain = 1 + CLASS_LR_MULT * self.gain(labels)[:, :, None, None]
        return x * gain + CLASS_LR_MULT * self.shift(labels)[:, :, None, None]


class LabelledSequential(nn.Sequential):
    """A Sequential that hands the class labels to its :class:`ClassBatchNorm` layers."""

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        for module in self:
            x = module(x, labels) if isinstance(module, ClassBatchNorm) else module(x)
        return x


class Projection(nn.Module):
    r"""The projection discriminator's class term :math:`\langle e_y, \phi(x) \rangle` (zero if unconditional)."""

    def __init__(self, channels: int, num_classes: int, sn: bool) -> None:
        super().__init__()
        embed = nn.Embedding(num_classes, channels) if num_classes > 1 else None
        self.embed = spectral_norm(embed) if embed is not None and sn else embed

    def forward(self, pooled: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None or labels is None:
            return pooled.new_zeros(pooled.shape[0])
        return (self.embed(labels) * pooled).sum(dim=1)


# --------------------------------------------------------------------------- DCGAN (Radford et al. 2016)


class DCGANGenerator(nn.Module):
    """Transposed convolutions from a 4x4 map up to the image, (class) BatchNorm + ReLU, tanh output."""

    def __init__(self, img_size: int, channels: int, z_dim: int = 100, width: int = 64, num_classes: int = 0):
        super().__init__()
        self.z_dim = z_dim
        ups = int(math.log2(img_size // 4))
        ch = width * 2 ** (ups - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, ch, 4, 1, 0, bias=False)]
        layers += [ClassBatchNorm(ch, num_classes), nn.ReLU(True)]
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), ClassBatchNorm(ch // 2, num_classes)]
            layers += [nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = LabelledSequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z[:, :, None, None], labels)


class MinibatchStd(nn.Module):
    """Appends the feature standard deviation over groups of ``group`` images as one more channel
    (Karras et al. 2018, as StyleGAN2-ADA's discriminator): the discriminator sees how much a
    batch varies, so a generator that draws the same image for different latents is caught."""

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(n, self.group)  # groups of `group` images, smaller where the batch does not divide
        std = x.view(g, n // g, c, h, w).float().var(dim=0, unbiased=False).add(1e-8).sqrt()
        per_group = std.mean(dim=(1, 2, 3)).to(x.dtype)  # one value per group member index
        return torch.cat([x, per_group.view(1, n // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(n, 1, h, w)], dim=1)


class DCGANDiscriminator(nn.Module):
    """Strided convolutions down to 4x4 (LeakyReLU, BatchNorm after the first), the minibatch
    standard deviation, a 4x4 conv to a logit. Class-conditional: the class as one-hot planes
    beside the image's channels (Mirza & Osindero's cGAN). A projection term on this unnormalised
    network either dominated the logit (the generator then drew the class's one best image) or,
    scaled down, taught the classes slowly: 42% against 73% class consistency after 2,000 MNIST steps.
    """

    def __init__(self, img_size: int, channels: int, width: int = 64, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes if num_classes > 1 else 0
        downs = int(math.log2(img_size // 4))
        first = nn.Conv2d(channels + self.num_classes, width, 4, 2, 1, bias=False)
        blocks = [nn.Sequential(first, nn.LeakyReLU(0.2, True))]
        ch = width
        for _ in range(downs - 1):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)
                )
            )
            ch *= 2
        self.blocks = nn.ModuleList(blocks)
        self.batch_std = MinibatchStd()
        self.head = nn.Conv2d(ch + 1, 1, 4, 1, 0, bias=False)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            planes = nn.functional.one_hot(labels, self.num_classes).to(x.dtype)[:, :, None, None]
            x = torch.cat([x, planes.expand(-1, -1, *x.shape[-2:])], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.batch_std(x)).flatten()


# ------------------------------------------------------------ ResNet + spectral norm (Miyato et al. 2018)


class GeneratorBlock(nn.Module):
    def __init__(self, cin: int, cout: int, num_classes: int = 0) -> None:
        super().__init__()
        self.body = LabelledSequential(
            ClassBatchNorm(cin, num_classes),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(cin, cout, 3, 1, 1),
            ClassBatchNorm(cout, num_classes),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1),
        )
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(x, labels) + self.skip(x)


class ResNetGenerator(nn.Module):
    """Linear to 4x4, residual up-blocks, (class) BatchNorm + ReLU + 3x3 conv + tanh."""

    def __init__(self, img_size: int, channels: int, z_dim: int = 128, width: int = 64, num_classes: int = 0):
        super().__init__()
        self.z_dim = z_dim
        ups = int(math.log2(img_size // 4))
        widths = [width * min(8, 2 ** (ups - i)) for i in range(ups + 1)]
        self.start = widths[0]
        self.linear = nn.Linear(z_dim, 4 * 4 * widths[0])
        self.blocks = nn.ModuleList(GeneratorBlock(widths[i], widths[i + 1], num_classes) for i in range(ups))
        self.out = LabelledSequential(
            ClassBatchNorm(widths[-1], num_classes), nn.ReLU(), nn.Conv2d(widths[-1], channels, 3, 1, 1)
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(z).view(z.shape[0], self.start, 4, 4)
        for block in self.blocks:
            h = block(h, labels)
        return torch.tanh(self.out(h, labels))


class DiscriminatorBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        self.first = first
        layers = [] if first else [nn.ReLU()]
        layers += [
            spectral_norm(nn.Conv2d(cin, cout, 3, 1, 1)),
            nn.ReLU(),
            spectral_norm(nn.Conv2d(cout, cout, 3, 1, 1)),
        ]
        self.body = nn.Sequential(*layers, nn.AvgPool2d(2))
        self.skip = nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 1)), nn.AvgPool2d(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class ResNetDiscriminator(nn.Module):
    """Residual down-blocks with spectral norm to 4x4, ReLU, global sum pooling, a linear logit."""

    def __init__(self, img_size: int, channels: int, width: int = 64, num_classes: int = 0):
        super().__init__()
        downs = int(math.log2(img_size // 4))
        widths = [channels] + [width * min(8, 2**i) for i in range(downs)]
        self.blocks = nn.ModuleList(DiscriminatorBlock(widths[i], widths[i + 1], i == 0) for i in range(downs))
        self.head = spectral_norm(nn.Linear(widths[-1], 1))
        self.projection = Projection(widths[-1], num_classes, sn=True)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        pooled = torch.relu(x).sum(dim=(2, 3))
        return self.head(pooled).flatten() + self.projection(pooled, labels)


register(Architecture("dcgan", "bce", 64, DCGANGenerator, DCGANDiscriminator, ema=False))
register(Architecture("resnet", "hinge", 64, ResNetGenerator, ResNetDiscriminator, ema=True))


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
