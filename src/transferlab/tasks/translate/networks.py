"""Generator and discriminator designs for translation, each in a registry.

``unet``: a U-Net (Ronneberger et al. 2015) whose encoder is any backbone spec the project takes
(ImageNet weights, ``NAME:random``, ``ae:RUN``, ``run:RUN``), read at five strides through timm's
``forward_intermediates``; the decoder upsamples with learned transposed convolutions and joins
each encoder level (skip connections), then the input itself at full resolution.

``patchgan``: pix2pix's conditional discriminator (Isola et al. 2017): it sees (input, image) and
scores overlapping patches. ``gan-run``: a GAN run's discriminator (``--d-init``), which judges the
image alone. ``lite0``: heads on frozen ImageNet Lite0 features (the GAN task's projected one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from transferlab.errors import UsageError

GENERATORS: dict[str, Callable[..., nn.Module]] = {}
DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {}


def register(registry: dict[str, Callable[..., nn.Module]], name: str) -> Callable:
    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        registry[name] = build
        return build

    return decorator


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class UpBlock(nn.Module):
    """x2 learned upsampling of the coarser level, joined with the skip, then two convolutions."""

    def __init__(self, cin: int, skip: int, cout: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = _block(cout + skip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


def _freeze_unused(encoder: nn.Module, probe_output: torch.Tensor) -> None:
    """Freeze the encoder's parameters its five feature levels do not use (a classifier's last
    1x1 convolution and norm): they would get no gradient, which data-parallel training refuses,
    and the run keeps them as they were (its weights still load into the same network)."""
    probe_output.backward()
    for param in encoder.parameters():
        if param.grad is None:
            param.requires_grad_(False)
        param.grad = None


class UNet(nn.Module):
    """Input in [0, 1] (3 channels, or 4 with an inpainting mask) -> RGB in [0, 1]."""

    def __init__(self, backbone: str, in_channels: int, img_size: int, width: int = 32, pretrained: bool = True):
        super().__init__()
        from transferlab import backbones

        built = backbones.create(backbone, pretrained=pretrained, num_classes=0, img_size=img_size)
        self.encoder, self.weights_source = built.model, built.weights_source
        self.architecture = backbones.architecture(built.model)
        self.normalize = backbones.Normalize(built.data_config["mean"], built.data_config["std"])
        # A 4th (mask) channel meets the pretrained RGB stem through a 1x1 convolution that starts
        # as "pass RGB through, ignore the mask", so the encoder's first layer keeps its weights.
        self.adapt = nn.Conv2d(in_channels, 3, 1) if in_channels != 3 else nn.Identity()
        if in_channels != 3:
            with torch.no_grad():
                self.adapt.weight.zero_()[:, :3, 0, 0] = torch.eye(3)
                self.adapt.bias.zero_()
        self.encoder.eval()  # one probe image cannot give BatchNorm batch statistics
        probe = self._levels(torch.zeros(1, in_channels, img_size, img_size), probe=True)
        self.encoder.train()
        _freeze_unused(self.encoder, sum(f.sum() for f in probe))
        self.adapt.zero_grad(set_to_none=True)
        probe = [f.detach() for f in probe]
        channels = [f.shape[1] for f in probe]
        widths = [min(width * 2**i, 8 * width) for i in range(len(channels))]  # finest (stride 2) to coarsest
        self.bottom = _block(channels[-1], widths[-1])
        self.ups = nn.ModuleList(
            UpBlock(widths[i + 1], channels[i], widths[i]) for i in reversed(range(len(channels) - 1))
        )
        self.full = UpBlock(widths[0], in_channels, width)  # stride 2 -> the input's resolution
        self.out = nn.Conv2d(width, 3, 1)

    def _levels(self, x: torch.Tensor, probe: bool = False) -> list[torch.Tensor]:
        size = x.shape[-1]
        try:
            feats = self.encoder.forward_intermediates(
                self.normalize(self.adapt(x)), indices=5, intermediates_only=True
            )
        except (AttributeError, NotImplementedError, RuntimeError) as exc:
            if not probe:
                raise
            raise UsageError(
                f"the encoder cannot give features at five strides ({str(exc).splitlines()[0][:80]})",
                "use a convolutional timm backbone (tf_efficientnet_lite0, resnet10t, ...)",
            ) from None
        strides = [size // f.shape[-1] for f in feats]
        if probe and (strides != [2, 4, 8, 16, 32] or any(f.shape[-1] * s != size for f, s in zip(feats, strides))):
            raise UsageError(
                f"--img-size {size} does not fit this encoder (its features come at strides {strides})",
                "use a multiple of 32, e.g. --img-size 64 or 128",
            )
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._levels(x)
        h = self.bottom(feats[-1])
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            h = up(h, skip)
        return torch.sigmoid(self.out(self.full(h, x)))

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(encoder, decoder) parameters: the pretrained encoder trains at a lower rate."""
        encoder = list(self.encoder.parameters())
        ids = {id(p) for p in encoder}
        return encoder, [p for p in self.parameters() if id(p) not in ids]


@register(GENERATORS, "unet")
def unet(backbone: str, in_channels: int, img_size: int, width: int = 32, pretrained: bool = True) -> UNet:
    return UNet(backbone, in_channels, img_size, width, pretrained)


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
    from transferlab.tasks import gan

    net, spec = gan.load_discriminator(run)
    return ImageDiscriminator(net, int(spec["channels"]), int(spec["img_size"]))


@register(DISCRIMINATORS, "lite0")
def lite0(in_channels: int, **_: Any) -> nn.Module:
    from transferlab.tasks import gan

    return ImageDiscriminator(gan.feature_discriminator(3))
