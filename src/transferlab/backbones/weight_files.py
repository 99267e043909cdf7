"""Reading weight files without unpickling code, and fitting them onto a timm model.

``.safetensors`` is read with safetensors; ``.pth`` / ``.pt`` / ``.bin`` / ``.ckpt`` with
``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
Training checkpoints (timm's ``{"state_dict": ...}``, Lightning's, DDP's ``module.`` prefix)
are unwrapped to the bare state dict.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from transferlab.errors import WeightsError

CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict", "state_dict_ema", "model_ema")
STRIP_PREFIXES = ("module.", "model.", "_orig_mod.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.is_dir() and (path / "model.safetensors").is_file():
        path = path / "model.safetensors"  # a transferlab run directory
    if not path.is_file():
        raise WeightsError(f"weights file {path} does not exist", "pass the path of a .safetensors or .pth file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for bad files
            raise WeightsError(
                f"cannot read {path} as safetensors ({exc})", "check that the file is complete"
            ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle errors surface as many types
        raise WeightsError(
            f"{path} is not a plain tensor file; refusing to unpickle it ({type(exc).__name__})",
            "save the state dict as .safetensors (or with torch.save(model.state_dict(), ...))",
        ) from None
    return _unwrap(loaded, path)


def _unwrap(loaded: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict):
        for key in CHECKPOINT_KEYS:
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path} holds no state dict of tensors", "save model.state_dict(), not the model object")
    state = {}
    for key, value in loaded.items():
        for prefix in STRIP_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        state[key] = value
    return state


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The state-dict prefixes of the classifier, from timm's pretrained config."""
    classifier = getattr(model, "pretrained_cfg", {}).get("classifier", "classifier")
    names = classifier if isinstance(classifier, (tuple, list)) else (classifier,)
    return tuple(f"{name}." for name in names)


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Load ``state`` into ``model``: the body must match exactly; a classifier of another size
    is left out (the model keeps its freshly initialised head)."""
    own = model.state_dict()
    heads = head_prefixes(model)
    body = {k: v for k, v in state.items() if not k.startswith(heads)}
    head = {k: v for k, v in state.items() if k.startswith(heads)}
    if all(k in own and own[k].shape == v.shape for k, v in head.items()):
        body.update(head)
    missing = [k for k in own if k not in body and not k.startswith(heads) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in body if k not in own]
    wrong = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in body.items()
        if k in own and own[k].shape != v.shape
    ]
    problems = [
        f"{len(keys)} {what} (e.g. {keys[0]})"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong))
        if keys
    ]
    if problems:
        arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        raise WeightsError(
            f"weights from {origin} do not fit {arch}: {'; '.join(problems)} tensors",
            "pass weights saved from the same architecture as --backbone",
        )
    model.load_state_dict(body, strict=False)
