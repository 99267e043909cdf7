"""What the routes of every kind answer with: PNGs as base64 entries, a worker's explanation map
as JSON, and sample grids."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from PIL import Image

from transferlab.serve.inputs import png_bytes


def png_entry(name: str, png: bytes) -> dict[str, str]:
    return {"file": name, "png_base64": base64.b64encode(png).decode()}


def explanation_entry(found: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """A worker's map as JSON: the class explained, its score, the peak (x, y) in the image's
    pixels, the map blended over the image (and a segmenter's uncertainty) as base64 PNGs."""
    entry = {"method": found["method"], "label": classes[found["class_index"]], "index": found["class_index"],
             "score": round(float(found["score"]), 6), "peak": list(found["peak"]),
             "png_base64": base64.b64encode(png_bytes(Image.fromarray(found["overlay"]))).decode()}  # fmt: skip
    if "boxes" in found:  # a detector's: each box with the map's peak inside it
        entry["boxes"] = found["boxes"]
    if "uncertainty" in found:
        entry["uncertainty_png_base64"] = base64.b64encode(png_bytes(Image.fromarray(found["uncertainty"]))).decode()
    return entry


def as_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def grid(pixels: np.ndarray, columns: int) -> Image.Image:
    """N x H x W x C uint8 images tiled row by row (skimage's montage), 2 px dark padding."""
    from skimage.util import montage

    rows = -(-len(pixels) // columns)
    tiled = montage(pixels, grid_shape=(rows, columns), padding_width=2, fill=(24,) * pixels.shape[-1], channel_axis=-1)
    return as_image(tiled.astype(np.uint8))
