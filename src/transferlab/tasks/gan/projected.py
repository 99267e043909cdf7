"""A discriminator on the frozen multi-scale features of ImageNet EfficientNet-Lite0, the network
Projected GAN (Sauer et al. 2021) uses, with small trainable heads (``--d-features lite0``).

Images are resized so the deepest used stage is 4x4, normalised as the pretrained weights expect,
and passed through the frozen network; at each of four scales (strides 4 to 32) a fixed random
1x1 projection (Projected GAN's cross-channel mixing) and a trainable spectral-norm head of
strided convolutions give a logit map, and the logits of all scales are averaged. Only the heads
learn, so few images suffice to train them: the transfer comes from the frozen features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from transferlab import backbones
from transferlab.tasks.gan.networks import Projection

STAGES = (1, 2, 3, 4)  # lite0 stages at strides 4, 8, 16, 32
FEATURE_SIZE = 128  # input side for the frozen network: 32 x 32 at stride 4 ... 4 x 4 at stride 32


class ScaleHead(nn.Module):
    def __init__(self, cin: int, size: int, width: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(cin, width, 1, bias=False)
        self.project.requires_grad_(False)  # fixed random mixing (kept in the state dict)
        layers: list[nn.Module] = []
        while size > 4:
            layers += [spectral_norm(nn.Conv2d(width, width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            size //= 2
        self.body = nn.Sequential(*layers)
        self.out = spectral_norm(nn.Conv2d(width, 1, 4, 1, 0))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(self.project(features))
        return self.out(h).flatten(), h.sum(dim=(2, 3))


class ProjectedDiscriminator(nn.Module):
    def __init__(self, channels: int, width: int = 64, num_classes: int = 0, weights: str | None = None) -> None:
        super().__init__()

        built = backbones.create("tf_efficientnet_lite0", num_classes=0, weights=weights)
        self.features = built.model.eval().requires_grad_(False)
        self.channels = channels
        self.normalize = backbones.Normalize(built.data_config["mean"], built.data_config["std"])
        with torch.no_grad():
            probe = self._stages(torch.zeros(1, 3, FEATURE_SIZE, FEATURE_SIZE))
        self.blocks = nn.ModuleList(ScaleHead(f.shape[1], f.shape[-1], width) for f in probe)
        self.projections = nn.ModuleList(Projection(width, num_classes, sn=True) for _ in probe)

    def train(self, mode: bool = True) -> ProjectedDiscriminator:
        super().train(mode)
        self.features.eval()  # frozen BatchNorm statistics, always
        return self

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        every = self.features.forward_intermediates(x, indices=5, intermediates_only=True)
        return [every[i] for i in STAGES]

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = (images + 1) / 2
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(FEATURE_SIZE, FEATURE_SIZE), mode="bilinear", align_corners=False)
        x = self.normalize(x)
        logits = []
        for feats, head, projection in zip(self._stages(x), self.blocks, self.projections):
            logit, pooled = head(feats)
            logits.append(logit + projection(pooled, labels))
        return torch.stack(logits).mean(dim=0)
