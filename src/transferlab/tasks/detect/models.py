"""Detectors by name: torchvision's detection models over any backbone spec, through an FPN on the
encoder's multi-scale features (``transferlab.dense.PyramidModel``), or whole from torchvision's
COCO weights (``--init coco``). A new detector is a builder here and an entry in :data:`DETECTORS`.

- ``fcos``: FCOS (Tian et al. 2019), anchor-free: per FPN location a class score, the distances to
  the box's four sides and a centre-ness; P3-P7.
- ``retinanet``: RetinaNet (Lin et al. 2017): 9 anchors a location, focal loss; P3-P7.
- ``fasterrcnn``: Faster R-CNN (Ren et al. 2015): a region proposal network, then RoIAlign and a box
  head; P2-P5 and a max-pooled P6.

Every detector sees images in [0, 1] (torchvision's transform is left without normalisation: the
encoder normalises as its weights expect) and labels from 0; Faster R-CNN's background class 0 is
hidden behind the ``Detector`` wrapper.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from transferlab.dense import PyramidModel
from transferlab.errors import UsageError, WeightsError
from transferlab.paths import downloads_off


@dataclass(frozen=True)
class DetectorKind:
    """How a torchvision detector is built: its class, the encoder levels its FPN reads (0 is
    stride 2), the FPN's extra levels, whether class 0 is background, and its COCO builder."""

    build: Callable[..., nn.Module]
    levels: tuple[int, ...]
    extra: str
    background: bool
    coco: str
    int8: bool = True  # ONNX Runtime runs its int8 graph (Faster R-CNN's crashed it: BENCHMARKS.md)


def _fcos(backbone: nn.Module, classes: int, **kw: Any) -> nn.Module:
    from torchvision.models.detection import FCOS

    return FCOS(backbone, classes, **kw)


def _retinanet(backbone: nn.Module, classes: int, **kw: Any) -> nn.Module:
    from torchvision.models.detection import RetinaNet

    return RetinaNet(backbone, classes, **kw)


def _faster_rcnn(backbone: nn.Module, classes: int, **kw: Any) -> nn.Module:
    from torchvision.models.detection import FasterRCNN

    return FasterRCNN(backbone, classes, **kw)


DETECTORS: dict[str, DetectorKind] = {
    "fcos": DetectorKind(_fcos, (2, 3, 4), "p6p7", False, "fcos_resnet50_fpn"),
    "retinanet": DetectorKind(_retinanet, (2, 3, 4), "p6p7", False, "retinanet_resnet50_fpn"),
    "fasterrcnn": DetectorKind(_faster_rcnn, (1, 2, 3, 4), "pool", True, "fasterrcnn_resnet50_fpn", int8=False),
}


class FeaturePyramid(PyramidModel):
    """The encoder's levels through torchvision's FPN: ``width`` channels at every level, the
    interface (``out_channels``, an ordered dict of maps) torchvision's detectors take."""

    def __init__(self, spec: str, img_size: int, levels: tuple[int, ...], extra: str, width: int,
                 pretrained: bool = True) -> None:  # fmt: skip
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool, LastLevelP6P7

        super().__init__(spec, 3, img_size, pretrained)
        self.levels, self.out_channels = levels, width
        blocks = LastLevelP6P7(width, width) if extra == "p6p7" else LastLevelMaxPool()
        self.fpn = FeaturePyramidNetwork([self.level_channels[i] for i in levels], width, extra_blocks=blocks)

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        feats = self._levels(x)
        return self.fpn(OrderedDict((str(i), feats[level]) for i, level in enumerate(self.levels)))


class Detector(nn.Module):
    """One of :data:`DETECTORS` with labels from 0: ``forward(images, targets)`` returns the losses
    while training, else per image ``boxes`` (x1 y1 x2 y2, in the input image's pixels), ``scores``
    and ``labels``. Images are float 3 x H x W in [0, 1], any sizes; evaluation resizes each so its
    longer side is ``img_size``."""

    def __init__(self, name: str, net: nn.Module, num_classes: int, img_size: int) -> None:
        super().__init__()
        self.name, self.net, self.num_classes, self.img_size = name, net, num_classes, img_size
        self.offset = 1 if DETECTORS[name].background else 0
        # Training batches come resized and cropped by the recipe's augmentation (scale jitter), so
        # torchvision's transform only batches them; evaluation resizes to img_size.
        net.transform._skip_resize = True

    @property
    def encoder(self) -> nn.Module:
        backbone = self.net.backbone
        return backbone.encoder if isinstance(backbone, PyramidModel) else backbone.body

    def forward(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]] | None = None) -> Any:
        if targets is not None:
            targets = [{"boxes": t["boxes"], "labels": t["labels"] + self.offset} for t in targets]
        out = self.net(images, targets)
        if self.training:
            return out
        return [{**o, "labels": o["labels"] - self.offset} for o in out]


class OneImageDetector(nn.Module):
    """A detector as ONNX export sees it: one 3 x H x W image in, (boxes, scores, labels) out."""

    def __init__(self, net: Detector) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        found = self.net([image])[0]
        return found["boxes"], found["scores"], found["labels"]


def _settings(img_size: int, score_threshold: float) -> dict[str, Any]:
    # mean 0 / std 1: the encoder's own Normalize does what its weights expect
    return {"min_size": img_size, "max_size": img_size, "image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0],
            "score_thresh": score_threshold, "detections_per_img": 100}  # fmt: skip


def build_detector(
    name: str, spec: str, num_classes: int, img_size: int, width: int = 128, pretrained: bool = True,
    init: str = "imagenet", score_threshold: float = 0.05,
) -> Detector:  # fmt: skip
    """``name`` over ``spec``'s FPN (``init="imagenet"``: the backbone spec's own weights), or
    torchvision's COCO-trained ``NAME_resnet50_fpn`` with a new class head (``init="coco"``)."""
    if name not in DETECTORS:
        raise UsageError(f"unknown --detector '{name}'", f"use one of: {', '.join(DETECTORS)}")
    kind = DETECTORS[name]
    classes = num_classes + kind.background
    settings = _settings(img_size, score_threshold)
    if name == "fasterrcnn":
        settings["box_score_thresh"] = settings.pop("score_thresh")
        settings["box_detections_per_img"] = settings.pop("detections_per_img")
    if init == "coco":
        return Detector(name, _coco_detector(kind, classes, settings, pretrained), num_classes, img_size)
    backbone = FeaturePyramid(spec, img_size, kind.levels, kind.extra, width, pretrained)
    net = kind.build(backbone, classes, **settings)
    net.weights_source = backbone.weights_source
    net.architecture = backbone.architecture
    return Detector(name, net, num_classes, img_size)


def _coco_detector(kind: DetectorKind, classes: int, settings: dict[str, Any], download: bool) -> nn.Module:
    """torchvision's COCO detector (ResNet-50 FPN) with its class layer made for ``classes``;
    ``download=False`` builds the same network without weights (a saved run's are loaded on it)."""
    import torchvision.models.detection as detection

    if download and downloads_off():
        raise WeightsError(f"--init coco downloads torchvision's {kind.coco} weights, and {downloads_off()} is set",
                           "use --init imagenet (ImageNet backbones; tf_efficientnet_lite0 works offline)")  # fmt: skip
    builder = getattr(detection, kind.coco)
    try:
        coco = builder(weights="DEFAULT" if download else None, weights_backbone=None, **settings)
    except (OSError, RuntimeError, ValueError) as exc:  # network, proxy, disk or a bad download
        raise WeightsError(f"torchvision's {kind.coco} weights could not be fetched ({str(exc)[:100]})",
                           "check the connection, or use --init imagenet") from None  # fmt: skip
    _replace_classes(coco, classes)
    coco.weights_source = f"torchvision {kind.coco} (COCO)" if download else "none"
    coco.architecture = kind.coco
    return coco


def _replace_classes(net: nn.Module, classes: int) -> None:
    """A new, freshly initialised class layer for ``classes`` (the rest keeps COCO's weights)."""
    import math

    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    if hasattr(net, "roi_heads"):
        net.roi_heads.box_predictor = FastRCNNPredictor(net.roi_heads.box_predictor.cls_score.in_features, classes)
        return
    head = net.head.classification_head
    anchors = head.num_anchors
    layer = nn.Conv2d(head.cls_logits.in_channels, anchors * classes, 3, padding=1)
    nn.init.normal_(layer.weight, std=0.01)
    nn.init.constant_(layer.bias, -math.log((1 - 0.01) / 0.01))  # the prior of a rare foreground
    head.cls_logits, head.num_classes = layer, classes
