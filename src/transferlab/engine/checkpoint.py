"""Pickle-free training checkpoints: one safetensors file holds the whole training state.

Any nested structure of dicts, lists, tensors, numpy arrays and JSON scalars (model and
optimizer state dicts, scheduler state, RNG states, counters) is split into its tensors, stored
as safetensors tensors, and the rest, stored as JSON in the file's metadata. Loading therefore
never runs pickle, and a checkpoint is written atomically (a crash keeps the previous one).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.engine import rng
from transferlab.errors import RunError
from transferlab.io import save_safetensors

STATE_KEY = "transferlab_state"


def _flatten(value: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        tensors[key] = value
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        tensors[key] = torch.from_numpy(np.ascontiguousarray(value))
        return {"__ndarray__": key}
    if isinstance(value, dict):
        if not all(isinstance(k, (str, int)) for k in value):
            raise TypeError(f"checkpoint keys must be str or int at {key}")
        return {"__dict__": [[k, _flatten(v, f"{key}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_flatten(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_flatten(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} at {key} in a checkpoint")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__ndarray__" in value:
            return tensors[value["__ndarray__"]].numpy()
        if "__tuple__" in value:
            return tuple(_unflatten(v, tensors) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: _unflatten(v, tensors) for k, v in value["__dict__"]}
    if isinstance(value, list):
        return [_unflatten(v, tensors) for v in value]
    return value


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    tree = _flatten(state, "s", tensors)
    # safetensors refuses tensors that share memory; a clone per shared storage keeps it simple.
    seen: set[int] = set()
    for key, tensor in tensors.items():
        ptr = tensor.untyped_storage().data_ptr() if tensor.numel() else -1
        if ptr in seen:
            tensors[key] = tensor.clone()
        seen.add(ptr)
    save_safetensors(tensors, path, metadata={STATE_KEY: json.dumps(tree)})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise RunError(f"no checkpoint at {path}", "pass a run directory that holds checkpoints/last.safetensors")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 - not a dict
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise RunError(f"checkpoint {path} is damaged ({exc})", "resume from another run or retrain") from None
    if STATE_KEY not in metadata:
        raise RunError(
            f"{path} is not a transferlab training checkpoint", "pass a run directory written by transferlab"
        )
    return _unflatten(json.loads(metadata[STATE_KEY]), tensors)


def capture_state(options: Any, **parts: Any) -> dict[str, Any]:
    """A recipe's training state: its options (a dataclass), every RNG, and each part's
    ``state_dict()`` (modules, optimizers, schedulers) or value (counters, histories)."""
    from dataclasses import asdict

    state = {key: part.state_dict() if hasattr(part, "state_dict") else part for key, part in parts.items()}
    return {"options": asdict(options), "rng": rng.capture(), **state}


def restore_state(state: dict[str, Any], **stateful: Any) -> None:
    """Load each given part from ``state`` (by its ``load_state_dict``) and restore every RNG."""

    for key, part in stateful.items():
        part.load_state_dict(state[key])
    rng.restore(state["rng"])
