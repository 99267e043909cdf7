"""FID and KID of generated images (torchmetrics), with feature extractors registered by name.

Scores are only comparable with the same extractor and the same sample counts, so every result
carries both. ``inception`` is torchmetrics' FID Inception-v3 (needs ``torch-fidelity`` and,
once, a download); ``lite0`` is the pooled 1280-d feature of the built-in offline ImageNet
EfficientNet-Lite0; ``auto`` takes Inception when it can be had, else Lite0.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from transferlab import backbones
from transferlab.engine.performance import for_inference
from transferlab.errors import TransferlabError, UsageError, WeightsError
from transferlab.metrics import register
from transferlab.paths import downloads_off
from transferlab.pixels import signed_to_uint8
from transferlab.runs import CLASSIFIER, read_run

if TYPE_CHECKING:
    from transferlab.engine.performance import Performance

EXTRACTORS: dict[str, Callable[[], nn.Module | int]] = {}
#: Images per feature pass: Lite0 at 224 px holds ~6 MB of activations an image at its peak
CHUNK = 64


def extractor(name: str) -> Callable:
    def decorator(build: Callable[[], nn.Module | int]) -> Callable[[], nn.Module | int]:
        EXTRACTORS[name] = build
        return build

    return decorator


class Lite0Features(nn.Module):
    """uint8 images (N x 3 x H x W) -> pooled ImageNet EfficientNet-Lite0 features (N x 1280)."""

    def __init__(self) -> None:
        super().__init__()

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

    try:
        import torch_fidelity  # noqa: F401 - torchmetrics' Inception lives there
    except ImportError:
        raise UsageError(
            "the Inception extractor needs torch-fidelity",
            "pip install 'transferlab[fid]', or use --fid-features lite0",
        ) from None

    if downloads_off():
        raise WeightsError(
            f"the FID Inception weights may need a download and downloads are off ({downloads_off()})",
            "use --fid-features lite0 (built in, offline)",
        )
    return 2048


class OnePass(nn.Module):
    """The feature network, run once per batch for FID and KID together: torchmetrics' two metrics
    each call their extractor on the same tensor, which doubled the cost of every evaluation
    (a minute more per 1,000 images on Lite0 on two CPU cores)."""

    def __init__(self, net: nn.Module, performance: Performance) -> None:
        super().__init__()
        self.net = performance.prepare(net)
        self.performance = performance  # its memory format (GenerationMetric keeps the features 32-bit)
        self.num_features = net.num_features
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self._last is None or self._last[0] is not images:
            self._last = (images, self.net(self.performance.inputs(images)).float())
        return self._last[1]


class RunFeatures(nn.Module):
    """uint8 images -> the pooled pre-logits features of a trained classifier run (``run:RUN``):
    FID/KID judged by a network that knows the domain (e.g. a digit classifier for digits).
    ``logits`` gives the run's class scores for the same images (class consistency)."""

    def __init__(self, run_dir: str) -> None:
        super().__init__()

        self.run = read_run(run_dir, model_kind=CLASSIFIER)
        self.net = backbones.from_run(self.run).model.eval().requires_grad_(False)
        config = self.run.preprocessing
        self.size = int(config["input_size"][-1])
        self.normalize = backbones.Normalize(config["mean"], config["std"])
        self.num_features = int(self.net.num_features)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float() / 255 if images.dtype == torch.uint8 else images.float()
        x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return self.normalize(x.clamp(0, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(self.net.forward_features(self._prepare(images)), pre_logits=True)

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(self._prepare(images))


def resolve_extractor(name: str) -> tuple[str, nn.Module | int]:

    if name.startswith("run:"):
        return name, RunFeatures(name.removeprefix("run:"))
    if name == "auto":
        try:
            return "inception", inception()
        except TransferlabError:
            return "lite0", lite0()
    if name not in EXTRACTORS:
        choices = ", ".join([*EXTRACTORS, "run:RUN (a classify run)"])
        raise UsageError(f"unknown FID feature extractor '{name}'", f"use auto or one of: {choices}")
    return name, EXTRACTORS[name]()


@dataclass
class GenerationScores:
    fid: float
    kid: float
    kid_std: float
    extractor: str
    real_samples: int
    fake_samples: int
    diversity: float = float("nan")  # mean pairwise feature distance of the generated images
    real_diversity: float = float("nan")  # the same of the real images: far above `diversity` = collapse

    def describe(self) -> str:
        return (
            f"FID {self.fid:.2f}, KID {self.kid * 1000:.2f}e-3 "
            f"({self.extractor} features, {self.real_samples} real / {self.fake_samples} generated)"
        )


class GenerationMetric:
    """FID and KID against a fixed set of real images, whose features are computed once."""

    def __init__(
        self,
        real: torch.Tensor,
        extractor_name: str = "auto",
        device: torch.device | str = "cpu",
        real_labels: torch.Tensor | None = None,
        performance: Performance | None = None,
    ):
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.kid import KernelInceptionDistance

        self.extractor, feature = resolve_extractor(extractor_name)
        self.features = feature  # the network (or Inception's dimension) the scores are taken on
        # Scores are compared across runs and devices: 32-bit features always (bf16 moved them), in
        # the memory format the run chose (that part is only speed)
        performance = replace(performance or for_inference(device), precision="32-true")
        shared = OnePass(feature, performance) if isinstance(feature, nn.Module) else feature
        self.real_samples = len(real)
        subset = max(2, min(1000, len(real)))
        # sync_on_compute off: one process scores the whole sample (rank 0 of a data-parallel run);
        # torchmetrics would otherwise wait in a gather for ranks that never evaluate
        local = {"reset_real_features": False, "sync_on_compute": False}
        self.fid = FrechetInceptionDistance(feature=shared, **local).to(device)
        with warnings.catch_warnings():  # "will save all extracted features": intended, the sets are small
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(feature=shared, subset_size=subset, **local)
        self.kid = kid.to(device)
        self.device = device
        self.real_labels = None if real_labels is None else torch.as_tensor(real_labels).cpu()
        for chunk in real.split(CHUNK):
            self._update(chunk, real=True)

    def _update(self, images: torch.Tensor, real: bool) -> None:
        images = _as_rgb_uint8(images).to(self.device)
        self.fid.update(images, real=real)
        self.kid.update(images, real=real)

    def score(self, fake: torch.Tensor, fake_labels: torch.Tensor | None = None) -> GenerationScores:
        """FID/KID of ``fake`` (uint8 or [-1, 1] float, N x C x H x W) against the real set. With
        labels on both sides, the diversity is taken within each class and averaged: a conditional
        generator that draws one image per class spreads across classes like the real data."""
        self.fid.reset()
        self.kid.reset()
        for chunk in fake.split(CHUNK):
            self._update(chunk, real=False)
        self.kid.subset_size = max(2, min(self.kid.subset_size, len(fake), self.real_samples))
        kid_mean, kid_std = self.kid.compute()
        feats = [torch.cat(f).cpu() for f in (self.kid.fake_features, self.kid.real_features)]
        if fake_labels is not None and self.real_labels is not None:
            fake_labels = torch.as_tensor(fake_labels).cpu()
            classes = set(fake_labels.tolist()) & set(self.real_labels.tolist())  # compared where both have them
            spread = [within_class_diversity(f, y, classes) for f, y in zip(feats, (fake_labels, self.real_labels))]
        else:
            spread = [diversity(f) for f in feats]
        return GenerationScores(
            float(self.fid.compute()),
            float(kid_mean),
            float(kid_std),
            self.extractor,
            self.real_samples,
            len(fake),
            *spread,
        )


@register("diversity")
def diversity(features: torch.Tensor, limit: int = 500) -> float:
    """Mean pairwise Euclidean distance between feature vectors (the first ``limit``): samples of a
    collapsed generator sit close together, so theirs falls far below the real images'."""
    x = torch.as_tensor(features).float()[:limit]
    if len(x) < 2:
        return float("nan")
    distances = torch.cdist(x, x)
    return float(distances.sum() / (len(x) * (len(x) - 1)))


def within_class_diversity(features: torch.Tensor, labels: torch.Tensor, classes: set[int] | None = None) -> float:
    """The mean over ``classes`` (default: all of ``labels``) of :func:`diversity` among that class's images."""
    chosen = sorted(set(labels.tolist()) if classes is None else classes)
    values = [diversity(features[labels == c]) for c in chosen if int((labels == c).sum()) > 1]
    return sum(values) / len(values) if values else float("nan")


@register("class_consistency")
def class_consistency(
    images: torch.Tensor, labels: torch.Tensor, classifier: str | RunFeatures, names: list[str]
) -> dict[str, Any]:
    """How a classifier run (a folder, or its loaded :class:`RunFeatures`) reads generated images:
    the share read as the class that was asked for (``labels`` index ``names``, matched to the
    classifier's classes by name), per class, and the share of classes it reads at least once."""

    judge = classifier if isinstance(classifier, RunFeatures) else RunFeatures(classifier)
    known = judge.run.class_names
    missing = [n for n in names if n not in known]
    if missing:
        raise UsageError(
            f"the classifier {classifier} does not know the class(es) {', '.join(missing[:5])}",
            f"use a classify run trained on the same classes ({', '.join(names[:10])})",
        )
    asked = torch.tensor([known.index(names[i]) for i in labels.tolist()])
    read = torch.cat([judge.logits(chunk).argmax(1) for chunk in images.split(256)])
    per_class = {
        names[k]: float((read[labels == k] == asked[labels == k]).float().mean()) for k in labels.unique().tolist()
    }
    return {
        "consistency": float((read == asked).float().mean()),
        "per_class": per_class,
        "coverage": len(set(read.tolist()) & set(asked.tolist())) / max(len(set(asked.tolist())), 1),
        "images": len(images),
        "classifier": str(judge.run.path),
    }


@register("fid_kid")
def fid_kid(
    real: torch.Tensor,
    fake: torch.Tensor,
    extractor: str = "auto",
    device: torch.device | str = "cpu",
    performance: Performance | None = None,
) -> GenerationScores:
    """FID and KID of ``fake`` against ``real`` (uint8 or [-1, 1] float, N x C x H x W) on the
    features of ``extractor`` (lite0 offline, inception), run as ``performance`` says."""
    return GenerationMetric(real, extractor, device, performance=performance).score(fake)


def _as_rgb_uint8(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8:
        images = signed_to_uint8(images)
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
