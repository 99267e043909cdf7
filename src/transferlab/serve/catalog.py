"""Which runs a server serves: found, checked (each model is built once before the server
starts, so a damaged run stops the start and is named), and described for ``/models``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.errors import RunError, TransferlabError, UsageError
from transferlab.registry import TASKS, Task
from transferlab.runs import KINDS as RUN_KINDS
from transferlab.runs import RUN_FILE, RunInfo, folder_name, read_run
from transferlab.serve.kinds import Serving


@dataclass(frozen=True)
class Kind:
    """A kind of run the server can serve: its name in ``/models``, how its task serves it, and its
    endpoints as the task record names them (with {name} for the served model's name)."""

    name: str
    serving: Serving
    endpoints: tuple[str, ...] = ()


def _serving_of(task: Task) -> dict[str, Serving]:
    """The task's ``tasks/NAME/serving.py`` ``SERVING`` (by served name): found by convention."""
    return importlib.import_module(f"{task.api().__name__}.serving").SERVING


#: Run kind -> how the server serves it, for every kind a task record says is served.
KINDS = {
    kind: Kind(served.name, _serving_of(task)[served.name], served.endpoints)
    for task in TASKS.values()
    for kind, served in task.serves.items()
}


@dataclass
class ServedModel:
    name: str
    run: RunInfo
    kind: Kind
    details: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.name,
            "task": self.run.task,
            "run": str(self.run.path),
            "metrics": self.run.metrics,
            "created": self.run.extra.get("created"),
            **self.details,
        }


def find_runs(runs: list[str | Path], models_dir: str | Path | None) -> list[Path]:
    """The named run folders, then every servable run below ``models_dir``."""
    found = [Path(r) for r in runs]
    if models_dir is not None:
        root = Path(models_dir)
        if not root.is_dir():
            raise UsageError(f"--models-dir {root} is not a folder", "pass the folder that holds your runs")
        for meta in sorted(root.rglob(RUN_FILE)):
            # a damaged run is an error (read_run raises); runs of kinds not served are left out
            if read_run(meta.parent).model.get("kind") in KINDS:
                found.append(meta.parent)
    if not found:
        raise UsageError("no run to serve", "name run folders (transferlab serve runs/classify/my-run) or --models-dir")
    return found


def _unique_name(path: Path, taken: set[str]) -> str:
    parts = [p for p in path.resolve().parts if p not in ("/", "")]
    for depth in range(1, len(parts) + 1):
        name = folder_name("-".join(parts[-depth:]), "model")
        if name not in taken:
            return name
    raise UsageError(f"{path} is named twice", "name each run once")


def load_catalog(runs: list[str | Path], models_dir: str | Path | None = None) -> list[ServedModel]:
    """Every run to serve, checked by building its model once; a run that cannot be served is an error."""
    served: list[ServedModel] = []
    for path in find_runs(runs, models_dir):
        run = read_run(path)
        kind = KINDS.get(run.model.get("kind"))
        if kind is None:
            served_kinds = ", ".join(RUN_KINDS[k].made_by for k in KINDS)
            raise RunError(
                f"{path} holds {getattr(RUN_KINDS.get(run.model.get('kind')), 'description', 'a model')}, "
                "which the server does not serve",
                f"serve runs of: {served_kinds}",
            )
        try:
            details = kind.serving.describe(run)
        except TransferlabError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to build the model means the run is damaged
            raise RunError(
                f"cannot serve {path}: its model does not load ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                "retrain the run, or leave it out",
            ) from None
        served.append(ServedModel(_unique_name(path, {m.name for m in served}), run, kind, details))
    return served
