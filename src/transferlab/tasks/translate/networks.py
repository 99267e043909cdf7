"""Generator and discriminator designs for translation, each in a registry.

``unet``: the shared U-Net of ``transferlab.dense`` (any backbone spec as its encoder) with three
sigmoid outputs: an image in [0, 1].

``patchgan``: pix2pix's conditional discriminator (Isola et al. 2017): it sees (input, image) and
scores overlapping patches. ``gan-run``: a GAN run's discriminator (``--d-init``), which judges the
image alone. ``lite0``: heads on frozen ImageNet Lite0 features (the GAN task's projected one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from transferlab.dense import UNet
from transferlab.tasks import gan

GENERATORS: dict[str, Callable[..., nn.Module]] = {}
DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {}


def register(registry: dict[str, Callable[..., nn.Module]], name: str) -> Callable:
    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        registry[name] = build
        return build

    return decorator


@register(GENERATORS, "unet")
def unet(backbone: str, in_channels: int, img_size: int, width: int = 32, pretrained: bool = True) -> UNet:
    """Images in [0, 1] -> RGB in [0, 1] (a sigmoid over three output channels)."""
    return UNet(backbone, in_channels, img_size, width, pretrained, out_channels=3, activation=torch.sigmoid)


class PatchGAN(nn.Module):
    """pix2pix's 70x70 PatchGAN, conditional: ``(input, image)`` in [0, 1] -> a grid of logits."""

    def __init__(self, in_channels: int, width: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels + 3, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for cin, cout, stride in ((width, width * 2, 2), (width * 2, width * 4, 2), (width * 4, width * 8, 1)):
            layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(width * 8, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1) * 2 - 1)


class ImageDiscriminator(nn.Module):
    """A discriminator of images alone (a GAN run's, or on frozen features) behind the
    ``(input, image)`` interface; images go in as the GAN task trains on them, [-1, 1]."""

    def __init__(self, net: nn.Module, channels: int = 3, size: int | None = None) -> None:
        super().__init__()
        self.net, self.channels, self.size = net, channels, size

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        x = image * 2 - 1
        if self.size is not None and x.shape[-1] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return self.net(x.mean(dim=1, keepdim=True) if self.channels == 1 else x)


@register(DISCRIMINATORS, "patchgan")
def patchgan(in_channels: int, **_: Any) -> nn.Module:
    return PatchGAN(in_channels)


@register(DISCRIMINATORS, "gan-run")
def gan_run(in_channels: int, run: str, **_: Any) -> nn.Module:
    """Transfer from generation: the discriminator of a ``gan train`` run (its public loader)."""

    net, spec = gan.load_discriminator(run)
    return ImageDiscriminator(net, int(spec["channels"]), int(spec["img_size"]))


@register(DISCRIMINATORS, "lite0")
def lite0(in_channels: int, **_: Any) -> nn.Module:

    return ImageDiscriminator(gan.feature_discriminator(3))
