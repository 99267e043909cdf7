"""FID and KID of generated images (torchmetrics), with feature extractors registered by name.

Scores are only comparable with the same extractor and the same sample counts, so every result
carries both. ``inception`` is torchmetrics' FID Inception-v3 (needs ``torch-fidelity`` and,
once, a download); ``lite0`` is the pooled 1280-d feature of the built-in offline ImageNet
EfficientNet-Lite0; ``auto`` takes Inception when it can be had, else Lite0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from transferlab.metrics import register

EXTRACTORS: dict[str, Callable[[], nn.Module | int]] = {}


def extractor(name: str) -> Callable:
    def decorator(build: Callable[[], nn.Module | int]) -> Callable[[], nn.Module | int]:
        EXTRACTORS[name] = build
        return build

    return decorator


class Lite0Features(nn.Module):
    """uint8 images (N x 3 x H x W) -> pooled ImageNet EfficientNet-Lite0 features (N x 1280)."""

    def __init__(self) -> None:
        super().__init__()
        from transferlab import backbones

        built = backbones.create("tf_efficientnet_lite0", num_classes=0)
        self.net = built.model.eval().requires_grad_(False)
        self.normalize = backbones.Normalize(built.data_config["mean"], built.data_config["std"])
        self.num_features = 1280

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        x = nn.functional.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False, antialias=True)
        return self.net(self.normalize(x.clamp(0, 1)))


@extractor("lite0")
def lite0() -> nn.Module:
    return Lite0Features()


@extractor("inception")
def inception() -> int:
    from transferlab.errors import UsageError, WeightsError

    try:
        import torch_fidelity  # noqa: F401 - torchmetrics' Inception lives there
    except ImportError:
        raise UsageError(
            "the Inception extractor needs torch-fidelity",
            "pip install 'transferlab[fid]', or use --fid-features lite0",
        ) from None
    from transferlab.paths import downloads_off

    if downloads_off():
        raise WeightsError(
            f"the FID Inception weights may need a download and downloads are off ({downloads_off()})",
            "use --fid-features lite0 (built in, offline)",
        )
    return 2048


def resolve_extractor(name: str) -> tuple[str, nn.Module | int]:
    from transferlab.errors import TransferlabError, UsageError

    if name == "auto":
        try:
            return "inception", inception()
        except TransferlabError:
            return "lite0", lite0()
    if name not in EXTRACTORS:
        raise UsageError(f"unknown FID feature extractor '{name}'", f"use auto or one of: {', '.join(EXTRACTORS)}")
    return name, EXTRACTORS[name]()


@dataclass
class GenerationScores:
    fid: float
    kid: float
    kid_std: float
    extractor: str
    real_samples: int
    fake_samples: int

    def describe(self) -> str:
        return (
            f"FID {self.fid:.2f}, KID {self.kid * 1000:.2f}e-3 "
            f"({self.extractor} features, {self.real_samples} real / {self.fake_samples} generated)"
        )


class GenerationMetric:
    """FID and KID against a fixed set of real images, whose features are computed once."""

    def __init__(self, real: torch.Tensor, extractor_name: str = "auto", device: torch.device | str = "cpu"):
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        self.extractor, feature = resolve_extractor(extractor_name)
        self.real_samples = len(real)
        subset = max(2, min(1000, len(real)))
        self.fid = FrechetInceptionDistance(feature=feature, reset_real_features=False).to(device)
        with warnings.catch_warnings():  # "will save all extracted features": intended, the sets are small
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(feature=feature, subset_size=subset, reset_real_features=False)
        self.kid = kid.to(device)
        self.device = device
        for chunk in real.split(250):
            self._update(chunk, real=True)

    def _update(self, images: torch.Tensor, real: bool) -> None:
        images = _as_rgb_uint8(images).to(self.device)
        self.fid.update(images, real=real)
        self.kid.update(images, real=real)

    def score(self, fake: torch.Tensor) -> GenerationScores:
        """FID/KID of ``fake`` (uint8 or [-1, 1] float, N x C x H x W) against the real set."""
        self.fid.reset()
        self.kid.reset()
        for chunk in fake.split(250):
            self._update(chunk, real=False)
        self.kid.subset_size = max(2, min(self.kid.subset_size, len(fake), self.real_samples))
        kid_mean, kid_std = self.kid.compute()
        return GenerationScores(
            float(self.fid.compute()), float(kid_mean), float(kid_std), self.extractor, self.real_samples, len(fake)
        )


@register("fid_kid")
def fid_kid(
    real: torch.Tensor, fake: torch.Tensor, extractor: str = "auto", device: torch.device | str = "cpu"
) -> GenerationScores:
    """FID and KID of ``fake`` against ``real`` (uint8 or [-1, 1] float, N x C x H x W) on the
    features of ``extractor`` (lite0 offline, inception)."""
    return GenerationMetric(real, extractor, device).score(fake)


def _as_rgb_uint8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8:
        images = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
