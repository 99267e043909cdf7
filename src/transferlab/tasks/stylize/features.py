"""Frozen pretrained feature networks for style transfer, behind one small interface.

A :class:`FeatureNetwork` takes RGB images in [0, 1] and returns the activations of its
chosen layers (shallow to deep), plus which of them carries content. ``lite0`` is the built-in
offline ImageNet EfficientNet-Lite0 (activation smoothing: ``losses.smooth``);
``vgg16`` / ``vgg19`` are torchvision's, for a user who is online or passes ``--weights``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from transferlab import backbones
from transferlab.backbones import Normalize
from transferlab.data.builtin import offline
from transferlab.errors import UsageError, WeightsError
from transferlab.paths import downloads_off


@dataclass
class FeatureNetwork:
    name: str
    layers: Callable[[torch.Tensor], list[torch.Tensor]]  # [0,1] RGB -> activations, shallow to deep
    content_layer: int  # index into the returned list
    # Default activation smoothing (losses.smooth). SWAG's form for Lite0 is still being chosen:
    # at 256 px / 100 L-BFGS evaluations on chelsea + starry_night (with line search), "none"
    # stylised most visibly; "channel" needs a ~10x style weight and then adds colour noise.
    smoothing: str
    min_size: int  # below this many pixels a side, the deepest layer has no spatial extent
    style_layers: tuple[int, ...] | None = None  # indices of the layers the style loss uses (None: all)


NETWORKS: dict[str, Callable[[str | Path | None], FeatureNetwork]] = {}


def register(name: str):
    def decorator(build: Callable[[str | Path | None], FeatureNetwork]):
        NETWORKS[name] = build
        return build

    return decorator


def _frozen(net: nn.Module) -> nn.Module:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


@register("lite0")
def lite0(weights: str | Path | None = None) -> FeatureNetwork:
    """EfficientNet-Lite0's five stages (strides 2..32) via timm's ``forward_intermediates``."""

    model, config, _ = backbones.create("tf_efficientnet_lite0", num_classes=0, weights=weights)
    model = _frozen(model)
    prepare = backbones.Normalize(config["mean"], config["std"])

    def layers(x: torch.Tensor) -> list[torch.Tensor]:
        model.to(x.device), prepare.to(x.device)
        return model.forward_intermediates(prepare(x), indices=5, intermediates_only=True)

    return FeatureNetwork("lite0", layers, content_layer=3, smoothing="none", min_size=32)


def _vgg(depth: int, weights: str | Path | None) -> FeatureNetwork:
    import torchvision

    builder = getattr(torchvision.models, f"vgg{depth}")
    if weights is not None:
        from transferlab.backbones.weight_files import read_state_dict

        net = builder(weights=None)
        net.load_state_dict(read_state_dict(weights))
    else:
        enum = getattr(torchvision.models, f"VGG{depth}_Weights").IMAGENET1K_V1
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
        if offline() and not cached.is_file():
            raise WeightsError(
                f"the ImageNet weights of vgg{depth} are not cached and downloads are off ({downloads_off()})",
                "pass --weights PATH to a VGG state dict, or use --network lite0 (built in, offline)",
            )
        try:
            net = builder(weights=enum)
        except Exception as exc:  # noqa: BLE001 - any download failure means the same to the user
            raise WeightsError(
                f"the ImageNet weights of vgg{depth} are not cached and could not be downloaded ({type(exc).__name__})",
                "pass --weights PATH to a VGG state dict, or use --network lite0 (built in, offline)",
            ) from None
    body = _frozen(net.features)
    # conv1_1, conv2_1, conv3_1, conv4_1, conv5_1 (after ReLU) for style; conv4_2 for content.
    starts = [0, 5, 10, 17, 24] if depth == 16 else [0, 5, 10, 19, 28]
    taps = sorted({s + 1 for s in starts} | {starts[3] + 3})

    prepare = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

    def layers(x: torch.Tensor) -> list[torch.Tensor]:
        body.to(x.device), prepare.to(x.device)
        out, h = [], prepare(x)
        for i, module in enumerate(body[: max(taps) + 1]):
            h = module(h)
            if i in taps:
                out.append(h)
        return out

    return FeatureNetwork(f"vgg{depth}", layers, content_layer=taps.index(starts[3] + 3), smoothing="none", min_size=32)


@register("vgg16")
def vgg16(weights: str | Path | None = None) -> FeatureNetwork:
    return _vgg(16, weights)


@register("vgg19")
def vgg19(weights: str | Path | None = None) -> FeatureNetwork:
    return _vgg(19, weights)


def feature_network(name: str, weights: str | Path | None = None) -> FeatureNetwork:
    if name not in NETWORKS:
        raise UsageError(f"unknown feature network '{name}'", f"use one of: {', '.join(NETWORKS)}")
    return NETWORKS[name](weights)
