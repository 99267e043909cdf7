"""Named datasets: ``digits`` ships with scikit-learn; the rest come through torchvision.

Each returns ``(train, val_or_None, class_names)``. Torchvision's downloads are attempted only
when a local copy is missing and ``TRANSFERLAB_OFFLINE`` is not set; a failed download becomes
one :class:`DataError` that says where a local copy is expected.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np

from transferlab import paths
from transferlab.data.collections import ArrayImages
from transferlab.errors import DataError
from transferlab.paths import downloads_off

Loaded = tuple[ArrayImages, ArrayImages | None, list[str]]

#: Where Debian's ``dataset-fashion-mnist`` package puts the original idx files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

BUILTINS: dict[str, Callable[[Path | None], Loaded]] = {}


def register(name: str) -> Callable[[Callable[[Path | None], Loaded]], Callable[[Path | None], Loaded]]:
    def decorator(fn: Callable[[Path | None], Loaded]) -> Callable[[Path | None], Loaded]:
        BUILTINS[name] = fn
        return fn

    return decorator


def offline() -> bool:
    return downloads_off() is not None


@register("digits")
def load_digits(_root: Path | None = None) -> Loaded:
    """scikit-learn's 1,797 8x8 handwritten digits (values 0..16), offline; no official split."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return ArrayImages(images, bunch.target), None, [str(c) for c in bunch.target_names]


@register("printed-digits")
def load_printed_digits(_root: Path | None = None) -> Loaded:
    """3,000 train / 1,000 validation digits rendered from matplotlib's fonts (see printed_digits)."""
    from transferlab.data.printed_digits import printed_digits

    return printed_digits(3000, seed=1), printed_digits(1000, seed=2), [str(d) for d in range(10)]


def _torchvision(name: str, cls_name: str, root: Path | None) -> Loaded:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    root = Path(root) if root else paths.datasets_dir() / name
    splits = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except RuntimeError:  # torchvision: "Dataset not found or corrupted"
            ds = _download(cls, name, root, train)
        data = np.asarray(ds.data)
        splits.append(ArrayImages(data, np.asarray(ds.targets)))
    return splits[0], splits[1], list(ds.classes)


def _download(cls: type, name: str, root: Path, train: bool):
    remedy = (
        "put a torchvision-format copy there or pass --data-root DIR; or give DATA as a local folder, archive or CSV"
    )
    if offline():
        raise DataError(f"{name} is not in {root} and downloads are off ({downloads_off()})", remedy)
    try:
        return cls(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - any network or integrity failure means the same
        raise DataError(f"{name} is not in {root} and could not be downloaded ({type(exc).__name__})", remedy) from None


@register("cifar10")
def load_cifar10(root: Path | None = None) -> Loaded:
    """CIFAR-10: 50,000 train / 10,000 test 32x32 RGB images (the test set is the validation)."""
    return _torchvision("cifar10", "CIFAR10", root)


@register("mnist")
def load_mnist(root: Path | None = None) -> Loaded:
    return _torchvision("mnist", "MNIST", root)


FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def read_idx(path: Path) -> np.ndarray:
    """An (optionally gzipped) idx file as a uint8 array. Format: 2 zero bytes, dtype code 0x08,
    ndim, ndim big-endian uint32 sizes, then the data. Ten lines; not worth a dependency."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path} is not a uint8 idx file", "use the original Fashion-MNIST/MNIST idx files")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    for suffix in (".gz", ""):
        images = folder / f"{prefix}-images-idx3-ubyte{suffix}"
        labels = folder / f"{prefix}-labels-idx1-ubyte{suffix}"
        if images.is_file() and labels.is_file():
            return read_idx(images), read_idx(labels)
    return None


@register("fashion-mnist")
def load_fashion_mnist(root: Path | None = None) -> Loaded:
    """Fashion-MNIST from ``root`` (idx files or torchvision layout), Debian's copy, or a download."""
    for folder in [p for p in (root, DEBIAN_FASHION_MNIST) if p is not None]:
        train, test = _idx_pair(Path(folder), "train"), _idx_pair(Path(folder), "t10k")
        if train and test:
            return ArrayImages(*train), ArrayImages(*test), list(FASHION_CLASSES)
    return _torchvision("fashion-mnist", "FashionMNIST", root)
