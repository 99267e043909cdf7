"""Where a backbone's pretrained weights come from, in order of preference:

1. an explicit file (``--weights PATH``);
2. transferlab's cache (``$TRANSFERLAB_HOME/weights/<name>.safetensors``);
3. the built-in offline weights (converted once and written to the cache);
4. timm's hub download, for a user who is online (also written to the cache).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from transferlab import paths
from transferlab.backbones.builtin import BUILTIN, convert_by_order, is_efficientnet_pytorch_layout, load_builtin
from transferlab.backbones.weight_files import fit_state_dict, read_state_dict
from transferlab.errors import WeightsError
from transferlab.io import save_safetensors
from transferlab.paths import downloads_off


def cache_file(name: str) -> Path:
    return paths.weights_dir() / f"{name.replace('/', '--')}.safetensors"


def describe_source(name: str) -> str:
    """Where ``create(name)`` would take weights from right now (without loading them)."""
    if cache_file(name).is_file():
        return "cache"
    if name in BUILTIN:
        return "built-in" if BUILTIN[name].file() else f"built-in (needs pip install {BUILTIN[name].extra})"
    return "hub (needs internet)"


def offline_names() -> list[str]:
    cached = sorted(p.stem.replace("--", "/") for p in paths.weights_dir().glob("*.safetensors"))
    builtin = [name for name, spec in BUILTIN.items() if spec.file()]
    return sorted(set(cached) | set(builtin))


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe: timm's own download retries for about a minute before giving up."""
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _not_found(name: str, why: str) -> WeightsError:
    works = ", ".join(offline_names()) or "none (pip install transferlab)"
    return WeightsError(
        f"no pretrained weights for '{name}': not in the cache, not built in, and {why}",
        f"pass --weights PATH (.safetensors, .pth or timm checkpoint), or use a backbone that works offline: {works}",
    )


def _from_hub(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    import timm

    if downloads_off():
        raise _not_found(name, f"downloads are off ({downloads_off()})")
    if not _hub_reachable():
        raise _not_found(name, "the model hub cannot be reached (offline?)")
    try:
        downloaded = timm.create_model(name, pretrained=True, num_classes=model.pretrained_cfg.get("num_classes", 1000))
    except Exception as exc:  # noqa: BLE001 - network, hub and missing-weights errors alike
        raise _not_found(name, f"the download failed ({type(exc).__name__}: {str(exc)[:120]})") from None
    return downloaded.state_dict()


def load_pretrained(name: str, model: nn.Module, weights: str | Path | None = None) -> str:
    """Put pretrained weights into ``model`` (which still has its ImageNet-size head).

    Returns a short description of where they came from.
    """
    if weights is not None:
        state = read_state_dict(weights)
        if is_efficientnet_pytorch_layout(state):
            state = convert_by_order(state, model, str(weights))
        fit_state_dict(model, state, str(weights))
        return f"file {weights}"
    cached = cache_file(name)
    if cached.is_file():
        fit_state_dict(model, read_state_dict(cached), f"cache {cached}")
        return "cache"
    if name in BUILTIN:
        state = load_builtin(name, model)
        origin = "built-in"
    else:
        state = _from_hub(name, model)
        origin = "hub"
    fit_state_dict(model, state, origin)
    save_safetensors(state, cached, metadata={"backbone": name, "origin": origin})
    return origin
