"""Dense prediction networks over any backbone spec the project takes (ImageNet weights,
``NAME:random``, ``ae:RUN``, ``run:RUN``): the encoder read at five strides through timm's
``forward_intermediates``, and decoders over those levels. Shared by ``translate`` (image outputs)
and ``segment`` (class logits); a new decoder is a class here and an entry in :data:`DECODERS`.

- ``unet``: U-Net (Ronneberger et al. 2015) as smp lays it out for class logits: nearest x2
  upsampling joined with each encoder level (skip connections), no block at stride 32, no input skip.
- ``unet-transposed``: the earlier layout (``translate``'s, for image outputs): learned x2
  upsampling, a block at stride 32, and the input itself joined at full resolution.
- ``fpn``: Feature Pyramid Network head (Lin et al. 2017; the semantic FPN of Kirillov et al. 2019):
  every level to one width, top-down sums, each level brought to stride 4, summed, upsampled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferlab import backbones
from transferlab.errors import UsageError
from transferlab.strategies import Strategy

#: Decoders by name: ``(backbone, in_channels, img_size, width, pretrained, out_channels) -> module``.
DECODERS: dict[str, Callable[..., nn.Module]] = {}
STRIDES = [2, 4, 8, 16, 32]


def decoder(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def add(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        DECODERS[name] = build
        return build

    return add


def _freeze_unused(encoder: nn.Module, probe_output: torch.Tensor) -> None:
    """Freeze the encoder's parameters its five feature levels do not use (a classifier's last
    1x1 convolution and norm): they would get no gradient, which data-parallel training refuses,
    and the run keeps them as they were (its weights still load into the same network)."""
    probe_output.backward()
    for param in encoder.parameters():
        if param.grad is None:
            param.requires_grad_(False)
        param.grad = None


class PyramidModel(nn.Module):
    """A backbone's five feature levels (strides 2..32) of an input in [0, 1]; subclasses decode."""

    def __init__(self, backbone: str, in_channels: int, img_size: int, pretrained: bool = True) -> None:
        super().__init__()

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
        with torch.enable_grad():  # the probe's backward finds unused layers, also where grad is off
            probe = self._levels(torch.zeros(1, in_channels, img_size, img_size), probe=True)
            _freeze_unused(self.encoder, sum(f.sum() for f in probe))
        self.encoder.train()
        self.adapt.zero_grad(set_to_none=True)
        self.level_channels = [f.shape[1] for f in probe]

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
        if probe and (strides != STRIDES or any(f.shape[-1] * s != size for f, s in zip(feats, strides))):
            raise UsageError(
                f"--img-size {size} does not fit this encoder (its features come at strides {strides})",
                "use a multiple of 32, e.g. --img-size 64 or 128",
            )
        return feats


def encoder_and_rest(network: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """A dense network's two parameter groups, bottom to top: its ``encoder``'s, then the rest
    (decoder or detection head), as the transfer strategies (``transferlab/strategies.py``) see it."""
    encoder = list(network.encoder.parameters())
    ids = {id(p) for p in encoder}
    return encoder, [p for p in network.parameters() if id(p) not in ids]


def encoder_spec(backbone: str, strategy: Strategy) -> str:
    """The backbone spec a strategy's encoder starts from: ``backbone``, or its architecture from
    random weights (``NAME:random``) for a strategy that is not pretrained (``scratch``)."""
    if strategy.pretrained or backbone.endswith(":random"):
        return backbone
    return f"{backbones.resolve(backbone).name}:random"


def strategy_groups(network: nn.Module, strategy: Strategy, total: int, lr: float) -> list[dict]:
    """The optimizer groups of a network with an ``encoder`` for a transfer strategy over ``total``
    epochs (or steps): (encoder, rest), the encoder's absent when the strategy never trains it (then
    it is frozen outright: left exactly as it was); otherwise its rate starts at 0 and the recipe
    sets it every step (``Strategy.encoder_scale``: 0 while frozen, the scale after)."""
    if strategy.body_frozen(total - 1, total, 2):
        network.encoder.requires_grad_(False)
    encoder, rest = encoder_and_rest(network)
    groups = [{"params": [p for p in encoder if p.requires_grad], "lr": 0.0}, {"params": rest, "lr": lr}]
    return [g for g in groups if g["params"]]


def strategy_optimizer(
    network: nn.Module, strategy: Strategy, epochs: int, lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over a dense network's :func:`strategy_groups`."""
    return torch.optim.AdamW(strategy_groups(network, strategy, epochs, lr), lr=lr, weight_decay=weight_decay)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class UpBlock(nn.Module):
    """x2 upsampling of the coarser level (learned, or nearest as smp's U-Net does), joined with the
    skip (if any), then two convolutions."""

    def __init__(self, cin: int, skip: int, cout: int, upsample: str = "transposed") -> None:
        super().__init__()
        if upsample == "transposed":
            self.up: nn.Module = nn.ConvTranspose2d(cin, cout, 2, stride=2)
            self.conv = _block(cout + skip, cout)
        else:
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.conv = _block(cin + skip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.up(x)
        return self.conv(x if skip is None else torch.cat([x, skip], dim=1))


class UNet(PyramidModel):
    """Input in [0, 1] (3 channels, or 4 with an inpainting mask) -> ``out_channels`` maps at the
    input's resolution (``activation`` applied: a sigmoid for images, none for class logits). The
    block at full resolution has ``full_width`` channels (default ``width``): it is the costliest
    one, and class logits need fewer channels there than pixels do."""

    def __init__(
        self, backbone: str, in_channels: int, img_size: int, width: int = 32, pretrained: bool = True,
        out_channels: int = 3, activation: Callable[[torch.Tensor], torch.Tensor] | None = None,
        full_width: int | None = None, upsample: str = "transposed", centre: bool = True, input_skip: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(backbone, in_channels, img_size, pretrained)
        self.activation, self.input_skip = activation, input_skip
        channels = self.level_channels
        widths = [min(width * 2**i, 8 * width) for i in range(len(channels))]  # finest (stride 2) to coarsest
        self.bottom = _block(channels[-1], widths[-1]) if centre else nn.Identity()
        coarsest = widths[-1] if centre else channels[-1]
        ins = [*widths[1:-1], coarsest]  # what each up block receives, finest first
        self.ups = nn.ModuleList(
            UpBlock(ins[i], channels[i], widths[i], upsample) for i in reversed(range(len(channels) - 1))
        )
        full_width = full_width or width
        # stride 2 -> the input's resolution, joined with the input itself or not
        self.full = UpBlock(widths[0], in_channels if input_skip else 0, full_width, upsample)
        self.out = nn.Conv2d(full_width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._levels(x)
        h = self.bottom(feats[-1])
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            h = up(h, skip)
        out = self.out(self.full(h, x if self.input_skip else None))
        return out if self.activation is None else self.activation(out)


class FPN(PyramidModel):
    """Semantic FPN: each level from stride 4 to 32 to ``width`` channels (1x1), top-down sums,
    a 3x3 convolution per level, all brought to stride 4 and summed, ``out_channels`` logits
    upsampled (bilinear) to the input's resolution."""

    def __init__(
        self, backbone: str, in_channels: int, img_size: int, width: int = 64, pretrained: bool = True,
        out_channels: int = 2,
    ) -> None:  # fmt: skip
        super().__init__(backbone, in_channels, img_size, pretrained)
        used = self.level_channels[1:]  # strides 4..32: stride 2 adds cost, not context
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in used)
        self.smooth = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True))
            for _ in used
        )
        self.out = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._levels(x)[1:]
        top = [lateral(f) for lateral, f in zip(self.lateral, feats)]
        for i in range(len(top) - 2, -1, -1):  # coarse to fine: add the upsampled coarser level
            top[i] = top[i] + F.interpolate(top[i + 1], size=top[i].shape[-2:], mode="nearest")
        size = top[0].shape[-2:]
        fused = sum(F.interpolate(smooth(t), size=size, mode="bilinear", align_corners=False)
                    for smooth, t in zip(self.smooth, top))  # fmt: skip
        return F.interpolate(self.out(fused), size=x.shape[-2:], mode="bilinear", align_corners=False)


#: smp's U-Net layout, which segment's ``unet`` takes (the ``UNet`` defaults are translate's layout).
SMP_LAYOUT: dict[str, Any] = {"upsample": "nearest", "centre": False, "input_skip": False}


def logits_unet(
    backbone: str, in_channels: int, img_size: int, width: int, pretrained: bool, out_channels: int, **layout: Any
) -> UNet:  # fmt: skip
    """A U-Net for class logits: half the width at full resolution (as smp's has), ``layout`` the
    ``UNet`` arguments that choose its layout."""
    return UNet(backbone, in_channels, img_size, width, pretrained, out_channels, full_width=max(8, width // 2),
                **layout)  # fmt: skip


@decoder("unet")
def unet(backbone: str, in_channels: int, img_size: int, width: int, pretrained: bool, out_channels: int) -> UNet:
    """Class logits on smp's layout (nearest upsampling, no stride-32 block, no input skip): on thin
    digit strokes it found the classes the learned-upsampling layout left at 0.00 IoU, in either
    training loop (BENCHMARKS.md, "segment: the decoder")."""
    return logits_unet(backbone, in_channels, img_size, width, pretrained, out_channels, **SMP_LAYOUT)


@decoder("unet-transposed")
def unet_transposed(
    backbone: str, in_channels: int, img_size: int, width: int, pretrained: bool, out_channels: int
) -> UNet:  # fmt: skip
    """The earlier segment U-Net (``translate``'s layout): runs saved before ``decoder_version`` 2
    load with it."""
    return logits_unet(backbone, in_channels, img_size, width, pretrained, out_channels)


@decoder("fpn")
def fpn(backbone: str, in_channels: int, img_size: int, width: int, pretrained: bool, out_channels: int) -> FPN:
    return FPN(backbone, in_channels, img_size, 2 * width, pretrained, out_channels)
