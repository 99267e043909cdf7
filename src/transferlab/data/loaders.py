"""Batches for training and evaluation, in two modes behind one interface.

* **Resident** (datasets that fit in memory): every image is decoded once into a uint8 tensor,
  kept at its native size when all images share one small square size (CIFAR's 32 px, say), else
  at the training size. Each batch is then resized, augmented (random resized crop + flip) and
  normalised with tensor ops, in one ``grid_sample`` call on the training device. This removes
  the per-epoch JPEG decoding and PIL work that bounds GPU throughput on small datasets.
* **Streaming** (larger datasets): a ``DataLoader`` with timm's transforms and persistent workers.

Both shuffle with a generator seeded by ``(seed, epoch)``, so an epoch's order is reproducible
after a resume, and both shard batches across data-parallel processes by rank.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from transferlab.data.collections import LabeledImages
from transferlab.data.transforms import TransformedImages, eval_transform, split_eval_transform, train_transform
from transferlab.engine.batches import share
from transferlab.engine.rng import step_generator
from transferlab.progress import track

#: Datasets whose decoded tensor would exceed this many bytes are streamed instead.
RESIDENT_LIMIT_BYTES = 6 * 1024**3

PIL_INTERPOLATION = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}


def _store_size(images: LabeledImages, size: int) -> int:
    """Native size if every image is the same small square, else the training size."""
    first = images.image(0).size
    if first[0] == first[1] and first[0] <= size:
        probe = [images.image(i).size for i in np.linspace(0, len(images) - 1, min(len(images), 32)).astype(int)]
        if all(p == first for p in probe):
            return first[0]
    return size


def fit_square(image: Image.Image, size: int, interpolation: str) -> np.ndarray:
    """Resize the shorter side to ``size`` and centre-crop a square: H x W x 3 uint8."""
    if image.size != (size, size):
        scale = size / min(image.size)
        new = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
        image = image.resize(new, PIL_INTERPOLATION.get(interpolation, Image.BICUBIC))
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return np.array(image, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on read-only)


def decode_all(images: LabeledImages, size: int, interpolation: str = "bicubic") -> torch.Tensor:
    """All images as one N x 3 x size x size uint8 tensor (decoded in threads)."""
    return _decode(images, size, lambda image: fit_square(image, size, interpolation))


def _decode(images: LabeledImages, size: int, to_pixels: Any) -> torch.Tensor:
    """``to_pixels`` (PIL image -> size x size x 3 uint8 array) over every image, in threads."""

    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8)

    def fill(index: int) -> None:
        out[index] = torch.from_numpy(to_pixels(images.image(index))).permute(2, 0, 1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in track(pool.map(fill, range(len(images))), "decoding images", total=len(images)):
            pass
    return out


def resident_fits(images: LabeledImages, store_size: int) -> bool:
    return len(images) * 3 * store_size**2 <= RESIDENT_LIMIT_BYTES


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    if not shuffle:
        return torch.arange(n)
    generator = step_generator(seed, epoch)
    return torch.randperm(n, generator=generator)


def global_batches(order: torch.Tensor, batch_size: int, drop_last: bool) -> list[torch.Tensor]:
    n = len(order)
    stop = (n // batch_size) * batch_size if drop_last else n
    return [order[i : min(i + batch_size, stop)] for i in range(0, stop, batch_size)]


@dataclass(frozen=True)
class Draw:
    """How one epoch's batches are drawn (see :meth:`Batches.batches`)."""

    train: bool
    seed: int
    epoch: int
    rank: int
    world: int
    skip: int
    scale: tuple[float, float]

    def share(self, batch: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch (the engine's one rule: ``engine.batches.share``)."""
        return share(batch, self.rank, self.world)


class Batches(ABC):
    """The interface every batch source answers: ``batches(batch_size, train=..., seed, epoch,
    rank, world, skip)`` yields ``(x, y)``; the epoch's order comes from ``(seed, epoch)``, each of
    ``world`` processes takes its share of every global batch, and ``skip`` leaves out the epoch's
    first batches (a run resumed mid-epoch)."""

    drop_last = True  # training leaves out a last, smaller batch (BatchNorm statistics)

    @abstractmethod
    def __len__(self) -> int:
        """Images in the source."""

    def batches(
        self,
        batch_size: int,
        *,
        train: bool,
        seed: int = 0,
        epoch: int = 0,
        rank: int = 0,
        world: int = 1,
        skip: int = 0,
        scale: tuple[float, float] = (0.35, 1.0),
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = epoch_order(len(self), seed, epoch, shuffle=train)
        batches = global_batches(order, batch_size, train and self._drops_last(batch_size))
        yield from self._batches(batches, Draw(train, seed, epoch, rank, world, skip, scale))

    def epoch_batches(self, batch_size: int) -> int:
        """Global batches one training epoch yields (what the schedule and the progress count)."""
        n = len(self)
        return n // batch_size if self._drops_last(batch_size) else math.ceil(n / batch_size)

    def _drops_last(self, batch_size: int) -> bool:
        return self.drop_last and len(self) >= batch_size

    @abstractmethod
    def _batches(self, batches: list[torch.Tensor], draw: Draw) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The source's own part: this process's share of each global batch after ``draw.skip``."""


class TensorBatches(Batches):
    """Batches of tensors already computed (e.g. a frozen body's features, for ``linear``)."""

    drop_last = False  # a linear head has no batch statistics: every example counts

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def _batches(self, batches: list[torch.Tensor], draw: Draw) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for index in (draw.share(batch) for batch in batches[draw.skip :]):
            if len(index):
                yield self.x[index], self.y[index]


class ResidentBatches(Batches):
    """Batches from a decoded uint8 tensor, augmented and normalised on ``device``."""

    def __init__(
        self,
        pixels: torch.Tensor,
        labels: np.ndarray,
        config: dict[str, Any],
        device: torch.device,
        channels_last: bool = False,
        augmix: bool = False,
    ) -> None:
        self.pixels = pixels.to(device)
        self.augmix = augmix
        self.labels = torch.as_tensor(labels, dtype=torch.long, device=device)
        self.size = int(config["input_size"][-1])
        self.mode = "bicubic" if config.get("interpolation") == "bicubic" else "bilinear"
        self.mean = torch.tensor(config["mean"], device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(config["std"], device=device).view(1, 3, 1, 1) * 255
        self.device = device
        self.channels_last = channels_last  # the memory format the network runs in (engine.performance)

    def __len__(self) -> int:
        return len(self.labels)

    def _batches(self, batches: list[torch.Tensor], draw: Draw) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Augmentation is drawn for the whole global batch and then sharded, so N processes see
        # exactly the crops and flips that one process would; skipped batches draw theirs too.
        generator = torch.Generator().manual_seed(draw.seed * 7_919 + draw.epoch * 104_729)
        for number, batch in enumerate(batches):
            params = self._crop_params(len(batch), generator, draw.scale) if draw.train else None
            mixes = torch.randint(2**62, (len(batch),), generator=generator) if draw.train and self.augmix else None
            index = draw.share(batch)
            if len(index) == 0 or number < draw.skip:
                continue
            x = self.pixels[index.to(self.device)]
            x = augmix(x, draw.share(mixes)) if mixes is not None else x.float()
            x = self._warp(x, draw.share(params)) if params is not None else self._resize(x)
            x = (x - self.mean) / self.std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[index.to(self.device)]

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.size:
            return x
        return F.interpolate(
            x, size=(self.size, self.size), mode=self.mode, antialias=x.shape[-1] > self.size, align_corners=False
        )

    @staticmethod
    def _crop_params(n: int, generator: torch.Generator, scale: tuple[float, float]) -> torch.Tensor:
        """Per image: a random resized crop (area ``scale``, aspect 3/4..4/3) and a horizontal
        flip, as the 2 x 3 affine matrix that maps output to input coordinates."""
        area = torch.empty(n).uniform_(*scale, generator=generator)
        ratio = torch.exp(torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=generator))
        w = torch.sqrt(area * ratio).clamp(max=1.0)
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (torch.rand(n, generator=generator) * 2 - 1) * (1 - w)
        cy = (torch.rand(n, generator=generator) * 2 - 1) * (1 - h)
        flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        return theta

    def _warp(self, x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """Crop, flip and resize to the training size in one ``grid_sample``."""
        grid = F.affine_grid(theta.to(self.device), [x.shape[0], 3, self.size, self.size], align_corners=False)
        return F.grid_sample(x, grid, mode=self.mode, padding_mode="reflection", align_corners=False).clamp_(0, 255)


def augmix(pixels: torch.Tensor, seeds: torch.Tensor) -> torch.Tensor:
    """AugMix (Hendrycks et al. 2020) of each uint8 image, by torchvision: a convex mix of three
    chains of 1-3 operations at severity 3, blended with the image. The operations that ImageNet-C
    also corrupts with (contrast, colour, brightness, sharpness) are left out (``all_ops=False``),
    as the paper does, so robustness is measured on corruptions training never saw. One seed per
    image: the same mixes for any number of processes and after a resume."""
    from torchvision.transforms import v2

    mix = v2.AugMix(severity=3, mixture_width=3, chain_depth=-1, alpha=1.0, all_ops=False)
    out = []
    with torch.random.fork_rng(devices=[]):
        for image, seed in zip(pixels.cpu(), seeds.tolist()):
            torch.manual_seed(seed)
            out.append(mix(image))
    return torch.stack(out).to(pixels.device).float()


class StreamingBatches(Batches):
    """The same interface over a ``DataLoader`` with timm transforms, for datasets too big to hold."""

    def __init__(
        self,
        images: LabeledImages,
        config: dict[str, Any],
        device: torch.device,
        workers: int,
        channels_last: bool = False,
        augmix: bool = False,
    ) -> None:

        # timm's AugMix (PIL) where images stream: severity 3, three chains, as the resident one
        augment = {"auto_augment": "augmix-m3-w3"} if augmix else {}
        self.train_set = TransformedImages(images, train_transform(config, **augment))
        self.eval_set = TransformedImages(images, eval_transform(config))
        self.device = device
        self.workers = workers
        self.channels_last = channels_last

    def __len__(self) -> int:
        return len(self.train_set)

    def _batches(self, batches: list[torch.Tensor], draw: Draw) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torch.utils.data import DataLoader

        shards = [shard for shard in map(draw.share, batches[draw.skip :]) if len(shard)]
        loader = DataLoader(
            self.train_set if draw.train else self.eval_set,
            batch_sampler=[b.tolist() for b in shards],
            num_workers=self.workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(draw.seed + draw.epoch),
        )
        for x, y in loader:
            x = x.to(self.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, y.to(self.device, non_blocking=True)


def decode_for_evaluation(images: LabeledImages, config: dict[str, Any]) -> torch.Tensor:
    """All images through the image half of the run's eval transform (PIL resize + centre crop, as
    ``predict`` and the server do), so evaluation sees exactly the pixels prediction sees."""

    to_pixels, _ = split_eval_transform(config)
    return _decode(images, int(config["input_size"][-1]), to_pixels)


def make_batches(
    images: LabeledImages,
    config: dict[str, Any],
    device: torch.device,
    workers: int = 2,
    resident: bool | None = None,
    evaluation: bool = False,
    channels_last: bool = False,
    augmix: bool = False,
):
    """Resident batches when the decoded dataset fits (or ``resident=True``), else streaming.
    ``evaluation``: the images are only evaluated, with the one eval preprocessing (both modes).
    ``channels_last``: batches in the memory format the network runs in. ``augmix``: training
    images AugMixed before the crop."""
    size = int(config["input_size"][-1])
    store = size if evaluation else _store_size(images, size)  # probes a few images: do it once
    if resident is None:
        resident = resident_fits(images, store)
    if not resident:
        return StreamingBatches(images, config, device, workers, channels_last, augmix)
    pixels = (
        decode_for_evaluation(images, config)
        if evaluation
        else decode_all(images, store, config.get("interpolation", "bicubic"))
    )
    return ResidentBatches(pixels, images.labels, config, device, channels_last, augmix)
