"""``transferlab benchmark RUN``: how fast a classifier or segmenter run answers on this machine, as
trained (torch fp32) and as exported (ONNX fp32, ONNX int8): latency at each batch size and
throughput.

Every model gets the same random batches at the run's input size, one after the other in this
process, each timed by ``speed.latency_ms`` (median after warm-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.errors import RunError
from transferlab.registry import OWNERS
from transferlab.runs import KINDS, read_run
from transferlab.speed import latency_ms, torch_latency_ms
from transferlab.tasks.quantize import SUFFIXES, onnx_session


def benchmark(run_dir: str | Path, batch_sizes: tuple[int, ...] = (1, 8), threads: int | None = None) -> list[dict]:
    """One row per runtime: latency (ms) per batch size and throughput (images/s) at the largest.
    The ONNX models are RUN/model.onnx (exported here if missing or stale) and RUN/model.int8.onnx (if
    ``export --quantize int8`` made it)."""
    from transferlab.tasks.export import current_onnx

    info = read_run(run_dir)
    model, example = _batched_network(run_dir, info.model.get("kind"))
    if threads:
        torch.set_num_threads(threads)
    shape = tuple(example.shape[1:])
    batches = {n: torch.randn(n, *shape, generator=torch.Generator().manual_seed(n)) for n in batch_sizes}
    rows = [_row("torch fp32", lambda n: torch_latency_ms(model, batches[n]), batch_sizes)]
    for name, path in (("ONNX fp32", current_onnx(run_dir)), ("ONNX int8", Path(run_dir) / f"model{SUFFIXES['int8']}")):
        if not path.is_file():
            rows.append({"runtime": name, "note": f"not exported: transferlab export {run_dir} --quantize int8"})
            continue
        rows.append(_row(name, _onnx_timer(path, batches), batch_sizes))
        rows[-1]["MB"] = round(path.stat().st_size / 2**20, 2)
    rows[0]["MB"] = round(info.weights_path.stat().st_size / 2**20, 2)
    columns = list(dict.fromkeys(k for row in rows for k in row))  # every row has every column ("-": none)
    return [{k: row.get(k, "" if k == "note" else "-") for k in columns} for row in rows]


def _batched_network(run_dir: str | Path, kind: Any) -> tuple[torch.nn.Module, torch.Tensor]:
    """The run's network and an example batch, from its task's ``exportable``: networks of
    batches of images (classifiers, segmenters); a detector's one-image graph is another matter."""
    task = OWNERS.get(kind)
    model, example, names = task.api().exportable(Path(run_dir)) if task and task.exports else (None, None, {})
    if names is not None:  # not exported as batches of images to logits (export.IMAGES_TO_LOGITS)
        have = KINDS[kind].description if kind in KINDS else repr(kind)
        raise RunError(f"{run_dir} holds {have}; benchmark times networks of image batches (classifiers, "
                       "segmenters)", "pass a classify, adapt, distill or segment run")  # fmt: skip
    return model.eval(), example


def _onnx_timer(path: Path, batches: dict[int, torch.Tensor]) -> Any:
    """batch size -> the ONNX model's latency (ms) on that batch."""
    session = onnx_session(path)
    feed = session.get_inputs()[0].name
    arrays = {n: x.numpy().astype(np.float32) for n, x in batches.items()}
    return lambda n: latency_ms(lambda: session.run(None, {feed: arrays[n]}))


def _row(name: str, timed: Any, batch_sizes: tuple[int, ...]) -> dict[str, Any]:
    row: dict[str, Any] = {"runtime": name}
    for n in batch_sizes:
        row[f"ms at batch {n}"] = round(timed(n), 2)
    largest = max(batch_sizes)
    row[f"images/s at batch {largest}"] = round(1000 * largest / row[f"ms at batch {largest}"], 1)
    return row
