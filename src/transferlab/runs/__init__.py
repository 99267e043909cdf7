"""The run directory every task writes, and reading it back without unpickling.

A run is a folder holding ``model.safetensors`` (weights) and ``run.json``::

    {"format": "transferlab-run", "format_version": 1, "task": "classify",
     "model": {"kind": "timm-classifier", "backbone": "tf_efficientnet_lite0", "num_classes": 5},
     "class_names": [...], "preprocessing": {...}, "metrics": {...}, "versions": {...}}

Tasks add their own files beside these (checkpoints, plots, ``report.html``).
"""

from __future__ import annotations

import json
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.errors import RunError
from transferlab.io import save_safetensors, write_json
from transferlab.registry import (  # noqa: F401 - the kinds' names, for runs' readers
    AUTOENCODER,
    CLASSIFIER,
    DETECTOR,
    GAN,
    RUN_KINDS,
    SEGMENTER,
    STYLE,
    TRANSLATOR,
    RunKind,
)

RUN_FORMAT = "transferlab-run"
FORMAT_VERSION = 1
RUN_FILE = "run.json"
WEIGHTS_FILE = "model.safetensors"


#: The registry of run kinds, from the task records (``transferlab.registry``): what each kind of
#: run is, which command makes it and which take it. Its model loads with ``registry.load_run``.
KINDS: dict[str, RunKind] = RUN_KINDS


def folder_name(label: str, fallback: str = "run") -> str:
    """A shell-friendly folder name for a label ("printed->full" -> "printed-full", "ae:runs/x" -> "ae-runs-x")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-") or fallback


def default_run_dir(task: str, name: str) -> Path:
    """``runs/<task>/<name>-<time>``: the one place run folders are named."""
    return Path("runs") / task / f"{folder_name(name, task)}-{time.strftime('%Y%m%d-%H%M%S')}"


def versions() -> dict[str, str]:
    import timm
    import torch

    from transferlab import __version__

    return {
        "transferlab": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "python": platform.python_version(),
    }


@dataclass
class TrainingResult:
    """What a training command returns: its run folder, report, loss curve and wall time."""

    run_dir: Path
    report: Path
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class RunInfo:
    path: Path
    task: str
    model: dict[str, Any]
    class_names: list[str]
    preprocessing: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    return value


def save_run(
    run_dir: str | Path,
    *,
    task: str,
    state_dict: dict,
    model: dict[str, Any],
    class_names: list[str],
    preprocessing: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    performance: Any = None,
) -> Path:
    """Write weights, then ``run.json`` (both atomically): a run with a ``run.json`` is complete.
    ``performance``: how the networks ran (``engine.performance.Performance``), recorded as such."""
    run_dir = Path(run_dir)
    save_safetensors(state_dict, run_dir / WEIGHTS_FILE, metadata={"format": RUN_FORMAT, "task": task})
    payload = {
        "format": RUN_FORMAT,
        "format_version": FORMAT_VERSION,
        "task": task,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": model,
        "class_names": list(class_names),
        "preprocessing": preprocessing,
        "metrics": metrics or {},
        "versions": versions(),
        **({"performance": performance.as_dict()} if performance is not None else {}),
        **(extra or {}),
    }
    write_json(run_dir / RUN_FILE, _json_ready(payload))
    return run_dir


def wrong_kind(run_dir: str | Path, task: Any, found: Any, wanted: str) -> RunError:
    """The one error for a run of another kind than a command takes: what it is, what is needed,
    and where the run found can be used instead."""
    have, need = KINDS.get(str(found)), KINDS[wanted]
    elsewhere = f"; this run goes to: {', '.join(have.accepted_by)}" if have else ""
    return RunError(
        f"{run_dir} is a '{task}' run holding {have.description if have else repr(found)}, not {need.description}",
        f"pass a run made by `{need.made_by}`{elsewhere}",
    )


def read_run(run_dir: str | Path, *, model_kind: str | None = None) -> RunInfo:
    """Read and check ``run.json``; ``model_kind`` demands a kind of model (e.g. a classifier)."""
    run_dir = Path(run_dir)
    meta_path = run_dir / RUN_FILE
    if not meta_path.is_file():
        raise RunError(
            f"{run_dir} is not a transferlab run (no {RUN_FILE})", "pass the folder a transferlab command wrote"
        )
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunError(f"{meta_path} is damaged ({exc})", "use another run, or retrain") from None
    if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
        raise RunError(f"{meta_path} is not a transferlab run file", "pass the folder a transferlab command wrote")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise RunError(
            f"{run_dir} was written by a newer transferlab "
            f"(run format {meta['format_version']}, this one reads {FORMAT_VERSION})",
            "upgrade transferlab: pip install -U transferlab",
        )
    model = meta.get("model", {})
    if model_kind is not None and model.get("kind") != model_kind:
        raise wrong_kind(run_dir, meta.get("task"), model.get("kind"), model_kind)
    if not (run_dir / WEIGHTS_FILE).is_file():
        raise RunError(f"{run_dir} has no {WEIGHTS_FILE}", "the run did not finish; resume it or retrain")
    known = {"format", "format_version", "task", "model", "class_names", "preprocessing", "metrics"}
    return RunInfo(
        path=run_dir,
        task=str(meta.get("task")),
        model=model,
        class_names=list(meta.get("class_names", [])),
        preprocessing=dict(meta.get("preprocessing", {})),
        metrics=dict(meta.get("metrics", {})),
        extra={k: v for k, v in meta.items() if k not in known},
    )
