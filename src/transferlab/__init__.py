"""transferlab: transfer learning on images, offline-first.

The Python API mirrors the CLI: every task trains with ``transferlab.TASK.train(...)`` (``transferlab
tasks`` lists them), ``transferlab.predict.predict(...)``,
``transferlab.backbones.create(...)``, ``transferlab.data.load_data(...)``. Heavy modules (torch,
timm) are imported only when used, so that ``transferlab --help`` and ``import transferlab`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Modules reachable as ``transferlab.<name>`` besides the tasks (``transferlab.registry.TASKS``).
_MODULES = {"metrics": "transferlab.metrics", "serve": "transferlab.serve"}


def __getattr__(name: str) -> Any:
    from transferlab.registry import TASKS

    if name in TASKS:
        return TASKS[name].api()
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'transferlab' has no attribute {name!r}")
