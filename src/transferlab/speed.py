"""How fast a network answers on this machine: the one latency measurement of distill's report
and ``transferlab benchmark`` (torch, ONNX fp32, ONNX int8 alike)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def latency_ms(call: Callable[[], Any], *, warmup: int = 3, repeats: int = 20, budget_s: float = 20.0) -> float:
    """The median wall time of ``call()`` in milliseconds, after ``warmup`` calls (allocator and
    thread-pool start-up left out); stops early once ``budget_s`` is spent (at least 3 timed calls)."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - started < budget_s):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return statistics.median(times) * 1000


def torch_latency_ms(model: Any, example: Any, **timing: Any) -> float:
    """``latency_ms`` of a torch module in eval mode, without autograd, on ``example``."""
    import torch

    model.eval()
    with torch.inference_mode():
        return latency_ms(lambda: model(example), **timing)
