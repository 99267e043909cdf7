"""transferlab: transfer learning on images, offline-first.

The Python API mirrors the CLI: ``transferlab.classify.fit(...)``, ``transferlab.predict.predict(...)``,
``transferlab.backbones.create(...)``, ``transferlab.data.load_data(...)``. Heavy modules (torch,
timm) are imported only when used, so that ``transferlab --help`` and ``import transferlab`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Task modules reachable as ``transferlab.<name>``.
_TASKS = {
    "classify": "transferlab.tasks.classify",
    "predict": "transferlab.tasks.predict",
    "stylize": "transferlab.tasks.stylize",
    "gan": "transferlab.tasks.gan",
    "adapt": "transferlab.tasks.adapt",
    "autoencoder": "transferlab.tasks.autoencoder",
    "translate": "transferlab.tasks.translate",
    "segment": "transferlab.tasks.segment",
    "detect": "transferlab.tasks.detect",
    "metrics": "transferlab.metrics",
    "serve": "transferlab.serve",
}


def __getattr__(name: str) -> Any:
    if name in _TASKS:
        return importlib.import_module(_TASKS[name])
    raise AttributeError(f"module 'transferlab' has no attribute {name!r}")
