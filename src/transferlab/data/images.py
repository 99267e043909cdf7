"""Decoding one image file into an RGB ``PIL.Image``, whatever mode it was saved in.

Pillow does the decoding; this module only fixes what it leaves to the caller: EXIF
orientation, 16-bit and float modes (``convert("RGB")`` clips them instead of scaling),
transparency, and refusing decompression bombs instead of allocating gigabytes.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported when an image becomes a tensor, not with this module
    import torch
from PIL import Image, ImageOps

from transferlab.errors import DataError

#: Images above this many pixels are refused (Pillow's own default is ~89 M, warning only).
MAX_IMAGE_PIXELS = 89_478_485

# We enforce the same limit ourselves (see load_rgb); Pillow's warning would only repeat it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)


#: How many skipped files a warning names before summarising the rest.
LISTED_BAD_FILES = 20


class SkippedImagesWarning(UserWarning):
    """Some files were not usable images and were left out."""


class BadImage(Exception):
    """One file that is not a usable image; ``reason`` is short and human-readable."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def warn_skipped(bad: list[BadImage], stacklevel: int = 3) -> None:
    """One warning that counts the unusable files and names them (the first few)."""
    if not bad:
        return
    lines = [f"  {b.path}: {b.reason}" for b in bad[:LISTED_BAD_FILES]]
    if len(bad) > LISTED_BAD_FILES:
        lines.append(f"  ... and {len(bad) - LISTED_BAD_FILES} more")
    warnings.warn(
        SkippedImagesWarning(f"skipped {len(bad)} unusable file(s):\n" + "\n".join(lines)), stacklevel=stacklevel
    )


def _scale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Map a 16-bit / int32 / float image onto 0..255 by its dtype's range, not by clipping."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        lo, hi = (0.0, 1.0) if array.max(initial=0) <= 1.0 else (0.0, 255.0)
    elif array.max(initial=0) > 255:
        lo, hi = 0.0, 65535.0
    else:
        lo, hi = 0.0, 255.0
    scaled = (array.astype(np.float64) - lo) / (hi - lo) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparent pixels are composited onto ``background``."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = _scale_to_uint8(np.asarray(image))
        return Image.fromarray(gray, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def load_rgb(path: str | Path) -> Image.Image:
    """Fully decode ``path`` as RGB with EXIF orientation applied; raise :class:`BadImage`.

    The pixel limit is checked on the header, before any pixel is decoded. (Pillow's own check
    works through process-wide state, which is not safe while files are checked in threads.)
    """
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise BadImage(path, _bomb_reason(image.width, image.height))
            image.load()  # force a full decode so truncated files fail here
            return to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError:
        raise BadImage(path, _bomb_reason()) from None
    except Image.UnidentifiedImageError:
        raise BadImage(path, "not an image") from None
    except FileNotFoundError:
        raise BadImage(path, "file not found") from None
    except IsADirectoryError:
        raise BadImage(path, "is a directory") from None
    except PermissionError:
        raise BadImage(path, "permission denied") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise BadImage(path, f"unreadable ({exc})") from None


def _bomb_reason(width: int = 0, height: int = 0) -> str:
    size = f"{width}x{height} = {width * height:,} pixels, " if width else ""
    return f"refused: {size}above the {MAX_IMAGE_PIXELS:,}-pixel limit (decompression bomb?)"


def open_image_or_fail(path: str | Path) -> Image.Image:
    """:func:`load_rgb` for a single user-named image: a bad one is a :class:`DataError`."""
    try:
        return load_rgb(path)
    except BadImage as bad:
        raise DataError(f"cannot use image {bad.path}: {bad.reason}", "pass a readable image file") from None


def image_tensor(path: str | Path) -> torch.Tensor:
    """One user-named image file as a uint8 3 x H x W tensor (RGB, EXIF orientation applied; a bad
    file refused): what segment and detect read and apply to."""
    import torch

    return torch.from_numpy(np.array(open_image_or_fail(path))).permute(2, 0, 1)


def array_to_rgb(array: np.ndarray) -> Image.Image:
    """One HxW, HxWx1, HxWx3 or HxWx4 array (any numeric dtype) as an RGB image."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # CHW -> HWC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    array = _scale_to_uint8(array)
    if array.ndim == 2:
        return Image.fromarray(array, mode="L").convert("RGB")
    if array.ndim == 3 and array.shape[-1] == 3:
        return Image.fromarray(array, mode="RGB")
    if array.ndim == 3 and array.shape[-1] == 4:
        return to_rgb(Image.fromarray(array, mode="RGBA"))
    raise DataError(
        f"an image array has shape {array.shape}",
        "pass images as N x H x W (gray) or N x H x W x 3 (RGB) arrays",
    )


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Named files as given; folders searched recursively for image files."""
    found: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found.extend(sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS))
        elif item.exists():
            found.append(item)
        else:
            raise DataError(f"{item} does not exist", "pass image files or folders of images")
    if not found:
        raise DataError(
            f"no image files found in {', '.join(map(str, inputs))}", "pass image files or folders of images"
        )
    return found
