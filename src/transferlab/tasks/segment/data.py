"""Segmentation data: images and their masks, paired by file stem, read once into memory.

Layouts (the first that fits wins): ``--images DIR --masks DIR``; DATA holding ``images/`` and
``masks/`` (optionally under ``train/``, ``val/``, ``test/``); the Pascal VOC layout
(``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/{train,val}.txt``); an archive of
any of these (extracted safely, once).

Masks: single-channel class indices (8- or 16-bit), palette PNGs (the index is the class), RGB
colour masks with a colour table (``--classes FILE`` of ``name,r,g,b`` lines), or binary 0/255
masks (two classes). ``ignore_index`` marks void pixels, which no loss or metric counts. Every
problem is refused with the file named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from transferlab.data import archives
from transferlab.data.images import IMAGE_EXTENSIONS, image_tensor
from transferlab.data.split import dense_parts, held_out_part
from transferlab.errors import DataError, UsageError


@dataclass
class Split:
    """Images (uint8 3 x H x W) and masks (int64 H x W, class indices or ``ignore_index``), any sizes."""

    images: list[torch.Tensor]
    masks: list[torch.Tensor]
    names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: list[int]) -> Split:
        return Split([self.images[i] for i in index], [self.masks[i] for i in index], [self.names[i] for i in index])


@dataclass
class SegmentationData:
    train: Split
    val: Split
    classes: list[str]
    ignore_index: int
    description: str
    colours: list[tuple[int, int, int]] = field(default_factory=list)  # a colour per class, for pictures

    def summary(self) -> str:
        return f"{self.description}: {len(self.train)} training and {len(self.val)} held-out images, " \
               f"{len(self.classes)} classes"  # fmt: skip


# ----------------------------------------------------------------------------- classes and colours


def read_classes(spec: str | None) -> tuple[list[str], dict[tuple[int, int, int], int]]:
    """``--classes``: a file of ``name`` or ``name,r,g,b`` lines, or a comma list of names.
    Returns the names and, where colours are given, colour -> class index."""
    if not spec:
        return [], {}
    path = Path(spec)
    if not path.is_file():
        return [name.strip() for name in spec.split(",") if name.strip()], {}
    names, table = [], {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = [f.strip() for f in line.split(",")]
        if not fields[0] or fields[0].startswith("#"):
            continue
        if len(fields) not in (1, 4) or (len(fields) == 4 and not all(f.isdigit() for f in fields[1:])):
            raise UsageError(
                f"{path}:{number} is not 'name' or 'name,r,g,b'", "write one class a line, e.g. road,128,64,128"
            )
        if len(fields) == 4:
            table[tuple(int(f) for f in fields[1:])] = len(names)
        names.append(fields[0])
    return names, table


#: Bright, distinct colours (matplotlib's tab20, strong shades first): none is black or near it, so
#: an overlay of any class, the first one too, keeps the photo beneath it visible.
PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
    (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
    (219, 219, 141), (158, 218, 229),
]  # fmt: skip


def default_colours(count: int) -> list[tuple[int, int, int]]:
    """Colours for drawing masks that have no colour table: :data:`PALETTE`, then bright hues a
    golden angle apart (distinct for any number of classes, none dark)."""
    import colorsys

    colours = PALETTE[:count]
    for index in range(count - len(colours)):
        hue, saturation = (index * 0.618034) % 1.0, (0.9, 0.6, 0.4)[index % 3]
        colours.append(tuple(round(255 * v) for v in colorsys.hsv_to_rgb(hue, saturation, 1.0)))
    return colours


# ----------------------------------------------------------------------------- finding pairs


def _images_in(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}


def _pairs(images: Path, masks: Path) -> list[tuple[Path, Path]]:
    """Images matched with masks by stem; an image without a mask is refused (listed)."""
    for folder, flag in ((images, "--images"), (masks, "--masks")):
        if not folder.is_dir():
            raise UsageError(f"{flag} {folder} is not a folder", "give a folder of images and one of masks")
    found, labels = _images_in(images), _images_in(masks)
    missing = sorted(set(found) - set(labels))
    if missing:
        listed = ", ".join(found[m].name for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DataError(f"{len(missing)} image(s) in {images} have no mask in {masks}: {listed}",
                        "give every image a mask with the same file name stem")  # fmt: skip
    return [(found[s], labels[s]) for s in sorted(found)]


def _voc(root: Path, part: str) -> list[tuple[Path, Path]]:
    listed = root / "ImageSets" / "Segmentation" / f"{part}.txt"
    stems = [s.strip() for s in listed.read_text().splitlines() if s.strip()] if listed.is_file() else []
    pairs = []
    for stem in stems:
        image, mask = root / "JPEGImages" / f"{stem}.jpg", root / "SegmentationClass" / f"{stem}.png"
        if not image.is_file() or not mask.is_file():
            raise DataError(f"{listed} names {stem}, but {image if not image.is_file() else mask} is missing",
                            "restore the VOC folders, or remove the name from the list")  # fmt: skip
        pairs.append((image, mask))
    return pairs


def find_layout(data: str | Path) -> tuple[dict[str, list[tuple[Path, Path]]], str]:
    """Split name -> (image, mask) pairs of DATA, and a description."""

    path = Path(data)
    if archives.is_archive(path):
        path = archives.extract(path)
    if not path.is_dir():
        raise UsageError(f"{data} is not a folder or an archive", "give a folder with images/ and masks/")
    inner = [p for p in path.iterdir() if p.is_dir()]
    if len(inner) == 1 and not (path / "images").is_dir() and not (path / "JPEGImages").is_dir():
        path = inner[0]  # an archive's single top folder
    if (path / "JPEGImages").is_dir():
        return {part: _voc(path, part) for part in ("train", "val")}, f"VOC {path.name}"
    if (path / "images").is_dir():
        return {"train": _pairs(path / "images", path / "masks")}, str(path.name)
    parts = {p: path / p for p in ("train", "val", "test") if (path / p / "images").is_dir()}
    if parts:
        return {p: _pairs(f / "images", f / "masks") for p, f in parts.items()}, str(path.name)
    raise UsageError(
        f"{data} holds neither images/ + masks/ nor the Pascal VOC layout",
        "arrange it as DATA/images/*.png + DATA/masks/*.png (same names), or pass --images/--masks",
    )


# ----------------------------------------------------------------------------- reading masks


def _read_mask(path: Path, table: dict[tuple[int, int, int], int]) -> np.ndarray:
    """The mask as an int64 array of class indices (before the binary and range checks)."""
    with Image.open(path) as mask:
        if mask.mode == "P" or mask.mode in ("L", "I", "I;16", "1"):
            return np.asarray(mask if mask.mode != "1" else mask.convert("L"), dtype=np.int64)
        rgb = np.asarray(mask.convert("RGB"))
    if not table:
        raise UsageError(f"{path} is a colour mask, but no colour table was given",
                         "pass --classes FILE with one 'name,r,g,b' line per class")  # fmt: skip
    flat = rgb.reshape(-1, 3)
    colours, inverse = np.unique(flat, axis=0, return_inverse=True)
    lookup = np.empty(len(colours), dtype=np.int64)
    for i, colour in enumerate(map(tuple, colours.tolist())):
        if colour not in table:
            raise DataError(f"{path} has the colour {colour}, which the colour table does not name",
                            "add it to --classes as 'name,r,g,b', or fix the mask")  # fmt: skip
        lookup[i] = table[colour]
    return lookup[inverse.reshape(-1)].reshape(rgb.shape[:2])


def _read_pair(image_path: Path, mask_path: Path, table: dict) -> tuple[torch.Tensor, np.ndarray]:
    image, mask = image_tensor(image_path), _read_mask(mask_path, table)
    if mask.shape != tuple(image.shape[1:]):
        size = f"{mask.shape[1]}x{mask.shape[0]}, its image {image_path} {image.shape[2]}x{image.shape[1]}"
        raise DataError(f"{mask_path} is {size}", "give each mask its image's size")
    return image, mask


def _as_classes(masks: list[np.ndarray], paths: list[Path], classes: list[str], ignore: int) -> tuple[list, list[str]]:
    """Binary 0/255 masks become classes 0/1; indices beyond the classes are refused."""
    values = set().union(*(np.unique(m).tolist() for m in masks))
    if values <= {0, 255} and 255 in values and len(classes) in (0, 2):  # binary masks (two classes)
        masks = [(m == 255).astype(np.int64) for m in masks]
        return masks, classes or ["class_0", "class_1"]
    top = max((v for v in values if v != ignore), default=0)
    if classes and top >= len(classes):
        where = next(p for p, m in zip(paths, masks) if ((m >= len(classes)) & (m != ignore)).any())
        raise DataError(f"{where} has class index {top}, beyond the {len(classes)} classes given",
                        f"give --classes with {top + 1} names, or set --ignore-index {top}")  # fmt: skip
    return masks, classes or [f"class_{i}" for i in range(top + 1)]


def load_segmentation(
    data: str | Path | None = None, *, images: str | None = None, masks: str | None = None,
    val_images: str | None = None, val_masks: str | None = None, classes: str | None = None,
    ignore_index: int = 255, val_fraction: float = 0.2, seed: int = 0, hold_out: bool = True,
) -> SegmentationData:  # fmt: skip
    """Read DATA (or ``--images/--masks``) into memory; split off a held-out part if none is given
    (``hold_out=False``: none is split off, and ``val`` is empty unless DATA has one)."""
    parts, description = dense_parts(data, images, masks, val_images, val_masks, pair=_pairs, find_layout=find_layout,
                                     flag="--masks")  # fmt: skip
    names, table = read_classes(classes)
    read: dict[str, Any] = {}
    for part, pairs in parts.items():
        decoded = [_read_pair(i, m, table) for i, m in pairs]
        read[part] = (decoded, [m for _, m in pairs])
    everything = [m for decoded, _ in read.values() for _, m in decoded]
    paths = [p for _, ps in read.values() for p in ps]
    converted, names = _as_classes(everything, paths, names, ignore_index)
    position, splits = 0, {}
    for part, (decoded, mask_paths) in read.items():
        count = len(decoded)
        masks_t = [torch.from_numpy(m) for m in converted[position : position + count]]
        splits[part] = Split([d[0] for d in decoded], masks_t, [p.stem for p in mask_paths])
        position += count
    train, val = held_out_part(splits, val_fraction if hold_out else 0.0, seed, description, Split([], [], []),
                               "images and masks")  # fmt: skip
    colours = list(table) if table else default_colours(len(names))
    return SegmentationData(train, val, names, ignore_index, description, colours)
