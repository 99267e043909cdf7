"""Metrics registered by name, with one way to ask for any of them::

    metrics.compute("classification", logits=..., labels=..., classes=[...])   # accuracy, F1, confusion
    metrics.compute("fid_kid", real=..., fake=..., extractor="lite0")           # GenerationScores
    metrics.compute("logme", features=..., labels=...)                          # transferability
    metrics.compute("segmentation", matrix=..., classes=[...])                 # mIoU, accuracy, Dice
    metrics.compute("detection", predictions=..., targets=..., classes=[...])  # mAP, AP per class, PR curve

A new metric is a function decorated with ``@register("name")`` in one of the modules below.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

METRICS: dict[str, Callable[..., Any]] = {}
MODULES = ("classification", "detection", "generation", "image", "segmentation", "transferability")


def register(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
        METRICS[name] = function
        return function

    return decorator


def names() -> list[str]:
    for module in MODULES:  # registration happens on import
        importlib.import_module(f"transferlab.metrics.{module}")
    return sorted(METRICS)


def compute(name: str, **inputs: Any) -> Any:
    """The metric ``name`` of ``inputs`` (see each metric's docstring for its inputs)."""
    from transferlab.errors import UsageError

    if name not in names():
        raise UsageError(f"unknown metric '{name}'", f"use one of: {', '.join(names())}")
    return METRICS[name](**inputs)
