"""Small networks registered with timm (``timm.create_model("lenet")``), so they answer timm's
interface (``forward_features``, ``forward_head``, ``reset_classifier``, ``group_matcher``) and
every command that takes a ``--backbone`` takes them too."""

from __future__ import annotations

from typing import Any

import torch
from timm.models import register_model
from torch import nn

#: Digits at 28 px; RGB in, so a LeNet run reads the same images as any other classifier.
LENET_CFG = {
    "architecture": "lenet",
    "input_size": (3, 28, 28),
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "interpolation": "bilinear",
    "crop_pct": 1.0,
    "crop_mode": "center",
    "classifier": "head",
    "first_conv": "features.0",
}


class LeNet(nn.Module):
    """LeNet as the Transfer-Learning-Library's digit benchmarks use it: the input is averaged to
    one grey channel, two conv/pool stages, then a 500-wide fully connected layer."""

    def __init__(self, num_classes: int = 10, drop_rate: float = 0.5, **_: Any) -> None:
        super().__init__()
        self.pretrained_cfg = {**LENET_CFG, "num_classes": num_classes}
        self.num_features = 500
        self.drop_rate = drop_rate
        self.features = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(20, 50, 5), nn.Dropout2d(drop_rate), nn.MaxPool2d(2), nn.ReLU(),
        )  # fmt: skip
        # 28 px inputs end at 4x4 (the pooling is then the identity); other sizes are pooled to it
        pool = nn.AdaptiveAvgPool2d(4)
        self.pre_logits = nn.Sequential(pool, nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Dropout(drop_rate))
        self.num_classes = num_classes
        self.head: nn.Module = nn.Linear(500, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.mean(dim=1, keepdim=True))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.pre_logits(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, *_: Any) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(500, num_classes) if num_classes else nn.Identity()

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return {"stem": r"^features\.0", "blocks": [(r"^features\.3", None), (r"^pre_logits", None)]}


@register_model
def lenet(pretrained: bool = False, **kwargs: Any) -> LeNet:
    return LeNet(**kwargs)
