"""Shared helpers for the benchmarks: the real CIFAR-10 images from ../shared/data."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data beside the checkout; on the device machine, a carried copy (see README.md).
SHARED = Path(os.environ.get("TRANSFERLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))


def cifar10_folder(cache: Path) -> Path:
    """Extract ../shared/data/cifar10.tar.gz once (45,000 train / 5,000 val JPEGs) and return its root."""
    archive = SHARED / "cifar10.tar.gz"
    if not archive.is_file():
        raise SystemExit(f"benchmark data missing: {archive}")
    target = cache / "cifar10"
    if not (target / "train").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as handle:
            handle.extractall(cache, filter="data")
        if not (target / "train").is_dir():  # the archive may hold the folders at its top level
            target = cache
    return target
