"""Pairs for translation: (input, target) images as uint8 tensors, held once.

Self-supervised tasks make the input from any photo, on the fly, with a generator seeded by
``(seed, step)`` (so a resumed run draws the same inputs): a registry maps each task to its
``make_input``. ``paired`` reads real pairs: ``DATA/A/x.png`` with ``DATA/B/x.png``, or pix2pix's
side-by-side ``AB`` images (A left, B right).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from transferlab.data.images import BadImage, collect_images, load_rgb
from transferlab.data.loaders import decode_all, fit_square
from transferlab.engine.batches import BatchDraw, flip_where
from transferlab.errors import DataError

#: task -> (input channels, make_input(target in [0, 1], generator, options) -> input in [0, 1])
MAKERS: dict[str, tuple[int, Callable[[torch.Tensor, torch.Generator, Any], torch.Tensor]]] = {}
LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def maker(name: str, channels: int = 3) -> Callable:
    def decorator(make: Callable) -> Callable:
        MAKERS[name] = (channels, make)
        return make

    return decorator


def grey(x: torch.Tensor) -> torch.Tensor:
    return (x * LUMA.to(x)).sum(dim=1, keepdim=True)


@maker("colorize")
def colorize_input(x: torch.Tensor, g: torch.Generator, opts: Any) -> torch.Tensor:
    """The luminance, as three equal channels (what a pretrained RGB encoder takes)."""
    return grey(x).expand(-1, 3, -1, -1)


@maker("superres")
def superres_input(x: torch.Tensor, g: torch.Generator, opts: Any) -> torch.Tensor:
    """Downscaled by ``scale`` (antialiased bicubic), then bicubic back to size: the network adds
    the detail the small image lost."""
    small = F.interpolate(x, scale_factor=1 / opts.scale, mode="bicubic", antialias=True, align_corners=False)
    return F.interpolate(small, size=x.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)


@maker("inpaint", channels=4)
def inpaint_input(x: torch.Tensor, g: torch.Generator, opts: Any) -> torch.Tensor:
    """One random rectangle (a quarter to a half of each side) blanked; the mask is channel 4."""
    n, _, h, w = x.shape
    size = torch.randint(h // 4, h // 2 + 1, (n, 2), generator=g)
    top = (torch.rand(n, generator=g) * (h - size[:, 0])).long()
    left = (torch.rand(n, generator=g) * (w - size[:, 1])).long()
    rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    mask = (rows >= top.view(n, 1, 1)) & (rows < (top + size[:, 0]).view(n, 1, 1))
    mask = (mask & (cols >= left.view(n, 1, 1)) & (cols < (left + size[:, 1]).view(n, 1, 1))).unsqueeze(1).to(x)
    return torch.cat([x * (1 - mask), mask], dim=1)


@maker("denoise")
def denoise_input(x: torch.Tensor, g: torch.Generator, opts: Any) -> torch.Tensor:
    return (x + opts.noise * torch.randn(x.shape, generator=g).to(x)).clamp(0, 1)


@maker("edges")
def edges_input(x: torch.Tensor, g: torch.Generator, opts: Any) -> torch.Tensor:
    """The Sobel gradient magnitude of the luminance, scaled to [0, 1] per image."""
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).to(x).view(1, 1, 3, 3)
    y = F.pad(grey(x), (1, 1, 1, 1), mode="replicate")
    magnitude = (F.conv2d(y, kx).pow(2) + F.conv2d(y, kx.transpose(2, 3)).pow(2)).sqrt()
    return (magnitude / magnitude.amax(dim=(2, 3), keepdim=True).clamp(min=1e-6)).expand(-1, 3, -1, -1)


@maker("paired")
def paired_input(x: torch.Tensor, g: torch.Generator, opts: Any) -> torch.Tensor:
    raise AssertionError("paired data carries its own inputs")  # never called: Pairs holds them


def input_channels(task: str) -> int:
    return MAKERS[task][0]


@dataclass
class Pairs:
    """Targets (and, for paired data, inputs) as uint8 N x 3 x S x S tensors, split train/val."""

    targets: torch.Tensor
    inputs: torch.Tensor | None
    train: torch.Tensor  # indices
    val: torch.Tensor
    description: str
    names: list[str]

    def batch(self, indices: torch.Tensor, task: str, opts: Any, g: torch.Generator) -> tuple[torch.Tensor, ...]:
        target = self.targets[indices].float() / 255
        if self.inputs is not None:
            return self.inputs[indices].float() / 255, target
        return MAKERS[task][1](target, g, opts), target

    def train_batch(self, draw: BatchDraw, task: str, opts: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of the step's (input, target) pairs. The inputs of the whole global
        batch are made (the makers draw masks and noise per image from one generator), then shared:
        making them is a small fraction of a U-Net step, and the ranks' shares stay exactly the
        one-process batch."""
        pick = self.train[torch.randint(len(self.train), (draw.batch_size,), generator=draw.generator)]
        x, y = self.batch(pick, task, opts, draw.generator)
        flip = torch.rand(len(pick), generator=draw.generator) < 0.5  # the same flip for input and target
        return tuple(draw.share(t) for t in flip_where(flip, x, y))

    def held_out(self, task: str, opts: Any, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The held-out pairs, with inputs drawn from a fixed generator: the same every time."""
        indices = self.val[:limit] if limit else self.val
        return self.batch(indices, task, opts, torch.Generator().manual_seed(opts.seed + 99_991))


def load_pairs(data: Any, task: str, img_size: int, seed: int, val_fraction: float) -> Pairs:

    if task == "paired":
        inputs, targets, names, description = _read_paired(Path(data), img_size)
    else:
        from transferlab.data import load_images

        images, _, description = load_images(data)
        targets, inputs = decode_all(images, img_size), None
        names = [Path(p).name for p in getattr(images, "paths", [])] or [str(i) for i in range(len(images))]
        if task == "colorize" and _all_grey(targets):
            raise DataError(
                f"{description}: every image is grey, so colorize has no colours to learn",
                "give colour photos (grey inputs are made from them)",
            )
    if len(targets) < 4:
        raise DataError(f"{description} holds {len(targets)} usable image(s)", "translation needs a few dozen at least")
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    # val_fraction 1: every image is held out (evaluating a trained run); else at least 2 train
    n_val = len(targets) if val_fraction >= 1 else min(max(1, round(len(targets) * val_fraction)), len(targets) - 2)
    return Pairs(targets, inputs, order[n_val:], order[:n_val], description, names)


def _all_grey(pixels: torch.Tensor) -> bool:
    return bool((pixels[:, 0] == pixels[:, 1]).all() and (pixels[:, 1] == pixels[:, 2]).all())


def _read_paired(root: Path, img_size: int) -> tuple[torch.Tensor, torch.Tensor, list[str], str]:
    """``root/A`` + ``root/B`` by file name, or side-by-side AB images in ``root``."""

    if not root.is_dir():
        raise DataError(f"paired DATA {root} is not a folder", "give DATA/A/ and DATA/B/, or a folder of AB images")

    def read(path: Path) -> Any:
        image = load_rgb(path)
        if isinstance(image, BadImage):
            raise DataError(f"{path} is not a readable image ({image.reason})", "remove or replace it")
        return image

    if (root / "A").is_dir() and (root / "B").is_dir():
        a = {p.stem: p for p in collect_images([root / "A"])}
        b = {p.stem: p for p in collect_images([root / "B"])}
        alone = sorted(set(a) ^ set(b))
        if alone:
            shown = ", ".join(f"{'A' if n in a else 'B'}/{n}" for n in alone[:5]) + (" ..." if len(alone) > 5 else "")
            raise DataError(
                f"{len(alone)} image(s) have no partner in {root}: {shown}",
                "give every A/<name> a B/<name> (same file name, any extension)",
            )
        pairs = []
        for name in sorted(a):
            left, right = read(a[name]), read(b[name])
            if left.size != right.size:
                raise DataError(
                    f"the pair '{name}' differs in size: A is {left.size[0]}x{left.size[1]}, "
                    f"B is {right.size[0]}x{right.size[1]}",
                    "give both images of a pair the same size",
                )
            pairs.append((name, left, right))
        description = f"{root} ({len(pairs)} A/B pairs)"
    else:
        pairs = []
        for path in collect_images([root]):
            image = read(path)
            if image.width != 2 * image.height:
                raise DataError(
                    f"{path} is {image.width}x{image.height}, not a side-by-side AB image (twice as wide as high)",
                    "give DATA/A/ and DATA/B/ folders, or AB images with A on the left",
                )
            h = image.height
            pairs.append((path.stem, image.crop((0, 0, h, h)), image.crop((h, 0, 2 * h, h))))
        description = f"{root} ({len(pairs)} side-by-side AB images)"

    def stack(images: list[Any]) -> torch.Tensor:
        return torch.stack([torch.from_numpy(fit_square(i, img_size, "bicubic")).permute(2, 0, 1) for i in images])

    return stack([p[1] for p in pairs]), stack([p[2] for p in pairs]), [p[0] for p in pairs], description
