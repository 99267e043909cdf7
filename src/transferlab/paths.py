"""Where transferlab keeps what it caches: converted weights, extracted archives, datasets."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The cache root: ``$TRANSFERLAB_HOME``, else ``~/.cache/transferlab``."""
    env = os.environ.get("TRANSFERLAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "transferlab"


def weights_dir() -> Path:
    return home() / "weights"


def datasets_dir() -> Path:
    return home() / "datasets"


def archives_dir() -> Path:
    return home() / "archives"
