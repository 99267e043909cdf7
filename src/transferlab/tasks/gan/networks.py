"""Generators and discriminators, behind one small interface and a registry (``--arch``).

Every generator maps ``(z, labels)`` to images in [-1, 1]; every discriminator maps
``(images, labels)`` to one logit per image and exposes ``blocks`` (lowest first), the units that
FreezeD (Mo et al. 2020) freezes. Class-conditional models take integer labels: the generator
embeds them into its input, the discriminator adds a projection term (Miyato & Koyama 2018),
:math:`D(x, y) = \\psi(\\phi(x)) + \\langle e_y, \\phi(x) \\rangle` for pooled features :math:`\\phi(x)`.
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


class ConditionalInput(nn.Module):
    """Concatenates a learnt class embedding to the latent (identity when unconditional)."""

    def __init__(self, z_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, z_dim) if num_classes > 1 else None
        self.out_dim = 2 * z_dim if self.embed is not None else z_dim

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return z
        return torch.cat([z, self.embed(labels)], dim=1)


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
    """Transposed convolutions from a 4x4 map up to the image, BatchNorm + ReLU, tanh output."""

    def __init__(self, img_size: int, channels: int, z_dim: int = 100, width: int = 64, num_classes: int = 0):
        super().__init__()
        self.z_dim = z_dim
        self.input = ConditionalInput(z_dim, num_classes)
        ups = int(math.log2(img_size // 4))
        ch = width * 2 ** (ups - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(self.input.out_dim, ch, 4, 1, 0, bias=False)]
        layers += [nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.input(z, labels)[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """Strided convolutions down to 4x4 (LeakyReLU, BatchNorm after the first), a 4x4 conv to a logit."""

    def __init__(self, img_size: int, channels: int, width: int = 64, num_classes: int = 0):
        super().__init__()
        downs = int(math.log2(img_size // 4))
        blocks = [nn.Sequential(nn.Conv2d(channels, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True))]
        ch = width
        for _ in range(downs - 1):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)
                )
            )
            ch *= 2
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(ch, 1, 4, 1, 0, bias=False)
        self.projection = Projection(ch, num_classes, sn=False)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x).flatten() + self.projection(x.sum(dim=(2, 3)), labels)


# ------------------------------------------------------------ ResNet + spectral norm (Miyato et al. 2018)


class GeneratorBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(cin, cout, 3, 1, 1),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, 1, 1),
        )
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class ResNetGenerator(nn.Module):
    """Linear to 4x4, residual up-blocks, BatchNorm + ReLU + 3x3 conv + tanh."""

    def __init__(self, img_size: int, channels: int, z_dim: int = 128, width: int = 64, num_classes: int = 0):
        super().__init__()
        self.z_dim = z_dim
        self.input = ConditionalInput(z_dim, num_classes)
        ups = int(math.log2(img_size // 4))
        widths = [width * min(8, 2 ** (ups - i)) for i in range(ups + 1)]
        self.start = widths[0]
        self.linear = nn.Linear(self.input.out_dim, 4 * 4 * widths[0])
        self.blocks = nn.Sequential(*[GeneratorBlock(widths[i], widths[i + 1]) for i in range(ups)])
        self.out = nn.Sequential(nn.BatchNorm2d(widths[-1]), nn.ReLU(), nn.Conv2d(widths[-1], channels, 3, 1, 1))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.linear(self.input(z, labels)).view(z.shape[0], self.start, 4, 4)
        return torch.tanh(self.out(self.blocks(h)))


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
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
