"""Class activation maps: the methods (pytorch-grad-cam's), the layer they read, and maps of a batch.

pytorch-grad-cam does the maps; this module only picks the layer for any network and keeps the
method names one registry, so ``--method`` and the docs list the same thing.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from transferlab.errors import UsageError


@dataclass(frozen=True)
class Method:
    """One way to weigh a layer's channels into a map: ``implementation`` names a pytorch-grad-cam
    class (imported when used: it brings OpenCV, which ``--help`` need not load)."""

    name: str
    implementation: str
    description: str

    def build(self, **kwargs: Any) -> Any:
        import pytorch_grad_cam

        return getattr(pytorch_grad_cam, self.implementation)(**kwargs)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("gradcam", "GradCAM", "channels weighted by the class score's mean gradient (Selvaraju et al. 2017)"),
        Method("gradcam++", "GradCAMPlusPlus", "gradient weights from second-order terms (Chattopadhay et al. 2018)"),
        Method("layercam", "LayerCAM", "each position weighted by its own positive gradient (Jiang et al. 2021)"),
        Method("eigencam", "EigenCAM", "the activations' first principal component; no gradients, class-agnostic"),
        Method(
            "scorecam",
            "ScoreCAM",
            "channels weighted by the score of the input masked by each (slow: one forward pass per channel)",
        ),
    )
}


def get_method(name: str) -> Method:
    if name not in METHODS:
        close = difflib.get_close_matches(name, list(METHODS), n=2)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UsageError(f"unknown explanation method '{name}'", f"{hint}choose one of {', '.join(METHODS)}")
    return METHODS[name]


@dataclass(frozen=True)
class Layer:
    """The layer a map is read from: its name in ``named_modules``, the module, and its stride
    (input side / map side)."""

    name: str
    module: nn.Module
    stride: int


def find_layer(model: nn.Module, example: torch.Tensor, within: nn.Module | None = None) -> Layer:
    """The layer whose maps localise best for any convolutional network, found by running it once:
    among the modules whose output is a spatial map (N x C x H x W, H and W > 1), the last to
    finish at the coarsest resolution. For a classifier that is the last map before pooling (a
    ResNet's ``layer4``, an EfficientNet's ``bn2``), the layer Grad-CAM's authors use; for a
    segmenter, the encoder's deepest level, which holds the context a class is decided on.
    ``within``: only that part's modules count (a detector's encoder, not its heads)."""
    finished: list[tuple[str, nn.Module, tuple[int, ...]]] = []

    def record(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, _: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4 and min(output.shape[-2:]) > 1:
                finished.append((name, module, tuple(output.shape)))

        return hook

    allowed = {id(m) for m in within.modules()} if within is not None else None
    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules()
               if n and (allowed is None or id(m) in allowed)]  # fmt: skip
    try:
        with torch.no_grad():
            model(example)
            # a timm model whose features are tokens (a ViT) has a spatial map only in its patch
            # embedding, which says nothing of the decision
            tokens = hasattr(model, "forward_features") and model.forward_features(example).dim() != 4
            # (a detector's wrapper has no forward_features: its encoder was probed through it)
    finally:
        for handle in handles:
            handle.remove()
    if not finished or tokens:
        raise UsageError(
            "the model has no spatial feature map to explain (a transformer's tokens, or an input too small)",
            "explain a convolutional network (tf_efficientnet_lite0, resnet50, ...), or pass a larger --size",
        )
    coarsest = min(shape[-1] * shape[-2] for _, _, shape in finished)
    name, module, shape = [f for f in finished if f[2][-1] * f[2][-2] == coarsest][-1]
    return Layer(name, module, max(1, round(example.shape[-1] / shape[-1])))


def class_maps(method: Method, model: nn.Module, layer: Layer, x: torch.Tensor, targets: list[Any]) -> np.ndarray:
    """Maps (N x H x W in [0, 1], at ``x``'s size) of ``targets`` (pytorch-grad-cam targets, one
    per image)."""
    # The graph starts at the layer (its output detached, then tracked): the backward pass runs
    # through the head only, not down to the input (3x less time for a 224 px image), and the
    # layer's gradients flow even where the weights are frozen.
    start = layer.module.register_forward_hook(lambda _m, _i, out: out.detach().requires_grad_(True))
    try:
        with method.build(model=model, target_layers=[layer.module]) as cam:
            maps = cam(input_tensor=x, targets=targets)
    finally:
        start.remove()
    model.zero_grad(set_to_none=True)  # the head's weights took gradients
    return np.nan_to_num(maps.astype(np.float32))
