"""The image transformation network of feed-forward style transfer (Johnson et al. 2016).

Encoder (9x9 conv, two stride-2 convs), residual blocks, decoder (two nearest-neighbour
upsamplings with convs, which avoid the checkerboard artefacts of transposed convs), 9x9 conv;
instance norm throughout (Ulyanov et al. 2016), reflection padding at every conv. Output in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(kernel // 2),
        nn.Conv2d(cin, cout, kernel, stride=stride, bias=not norm),
    ]
    if norm:
        layers.append(nn.InstanceNorm2d(cout, affine=True))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, 3), _conv(channels, channels, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upsample(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _conv(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class StyleTransformer(nn.Module):
    """RGB in [0, 1] -> stylised RGB in [0, 1], any size (padded to a multiple of 4 inside)."""

    def __init__(self, width: int = 32, blocks: int = 5) -> None:
        super().__init__()
        self.width, self.blocks = width, blocks
        self.net = nn.Sequential(
            _conv(3, width, 9),
            _conv(width, 2 * width, 3, stride=2),
            _conv(2 * width, 4 * width, 3, stride=2),
            *[ResidualBlock(4 * width) for _ in range(blocks)],
            Upsample(4 * width, 2 * width),
            Upsample(2 * width, width),
            _conv(width, 3, 9, norm=False, relu=False),
        )

    def config(self) -> dict[str, int]:
        return {"width": self.width, "blocks": self.blocks}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = -h % 4, -w % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(h, w) > 4 else "replicate")
        y = torch.sigmoid(self.net(x * 2 - 1))
        return y[..., :h, :w]
