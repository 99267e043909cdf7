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


def downloads_off() -> str | None:
    """Which variable turns downloads off (``TRANSFERLAB_OFFLINE``, or Hugging Face's
    ``HF_HUB_OFFLINE`` that its users already set), or None when downloads may be tried."""
    for name in ("TRANSFERLAB_OFFLINE", "HF_HUB_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on"):
            return name
    return None
