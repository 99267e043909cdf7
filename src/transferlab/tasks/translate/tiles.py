"""Applying a translation network to images of any size: inputs prepared as in training, padded
to the encoder's stride, and large images done in overlapping tiles, blended with linear ramps
(so no seam shows where tiles meet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from transferlab.data.images import BadImage, load_rgb
from transferlab.errors import DataError
from transferlab.io import atomic_path
from transferlab.pixels import channels_last_array, unit_to_uint8
from transferlab.tasks.translate.data import MAKERS

STRIDE = 32  # the encoder's coarsest stride
OVERLAP = 32


def prepare(path: Path, spec: dict[str, Any]) -> torch.Tensor:
    """The network's input for one file (1 x C x H x W in [0, 1]), made as in training: grey for
    colorize, bicubic-upscaled by the run's factor for superres; for inpaint the holes are the
    transparent pixels of an RGBA image."""

    image = load_rgb(path)
    if isinstance(image, BadImage):
        raise DataError(f"{path} is not a readable image ({image.reason})", "pass image files")
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    task = spec["task"]
    if task == "colorize":
        return MAKERS["colorize"][1](x, torch.Generator(), None)
    if task == "superres":
        return F.interpolate(x, scale_factor=int(spec["scale"]), mode="bicubic", align_corners=False).clamp(0, 1)
    if task == "inpaint":
        with Image.open(path) as raw:
            alpha = np.asarray(raw.convert("RGBA"))[..., 3]
        mask = torch.from_numpy((alpha == 0).astype(np.float32))[None, None]
        return torch.cat([x * (1 - mask), mask], dim=1)
    return x


def _ramp(size: int) -> torch.Tensor:
    edge = torch.linspace(0.05, 1, OVERLAP)
    ramp = torch.ones(size)
    ramp[:OVERLAP], ramp[-OVERLAP:] = edge, edge.flip(0)
    return ramp


@torch.no_grad()
def run_tiled(net: torch.nn.Module, x: torch.Tensor, tile: int, batch_size: int) -> torch.Tensor:
    """``net`` over ``x`` (1 x C x H x W) of any size -> 1 x 3 x H x W."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -h % STRIDE, -w % STRIDE
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    padded = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    device = next(net.parameters()).device
    if max(padded.shape[-2:]) <= tile:
        return net(padded.to(device)).float().cpu()[..., :h, :w]
    H, W = padded.shape[-2:]
    if min(H, W) < tile:  # a long thin image: pad the short side up to one tile
        padded = F.pad(padded, (0, max(0, tile - W), 0, max(0, tile - H)), mode="replicate")
        H, W = padded.shape[-2:]
    step = tile - OVERLAP
    tops = sorted({*range(0, H - tile, step), H - tile})
    lefts = sorted({*range(0, W - tile, step), W - tile})
    corners = [(t, left) for t in tops for left in lefts]
    weight = _ramp(tile)[:, None] * _ramp(tile)[None, :]
    total, norm = torch.zeros(1, 3, H, W), torch.zeros(1, 1, H, W)
    for start in range(0, len(corners), batch_size):
        group = corners[start : start + batch_size]
        crops = torch.cat([padded[..., t : t + tile, left : left + tile] for t, left in group])
        outputs = net(crops.to(device)).float().cpu()
        for (t, left), output in zip(group, outputs):
            total[..., t : t + tile, left : left + tile] += output * weight
            norm[..., t : t + tile, left : left + tile] += weight
    return (total / norm)[..., :h, :w]


def translate_file(net: torch.nn.Module, spec: dict[str, Any], path: Path, out: Path, tile: int, batch: int) -> Path:

    result = run_tiled(net, prepare(path, spec), tile, batch)[0].clamp(0, 1)
    pixels = channels_last_array(unit_to_uint8(result))
    target = out / f"{path.stem}_{spec['task']}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return target
