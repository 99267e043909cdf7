"""Choosing for the user: the learning-rate finder and tuning studies on Optuna.

    from transferlab import tune
    finding = tune.lr_find("classify", "photos/", img_size=64)        # finding.suggestion -> --lr
    result = tune.tune("classify", "photos/", trials=20, img_size=64)  # runs/tune/classify-photos/
    result = tune.tune("segment", "membrane/", trials=40, storage="postgresql://u:p@db/studies")  # on each machine

Any task whose registry record has ``tuning`` takes both (``transferlab tasks`` lists them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferlab.engine.rate_finder import RULES
from transferlab.errors import UsageError
from transferlab.registry import TASKS, Task

__all__ = ["lr_find", "tunable", "tune"]


def tunable() -> list[str]:
    """The tasks ``tune`` and ``lr-find`` take."""
    return [name for name, task in TASKS.items() if task.tuning is not None]


def _task(name: str) -> Task:
    task = TASKS.get(name)
    if task is None or task.tuning is None:
        raise UsageError(f"'{name}' is not a task that can be tuned", f"use one of: {', '.join(tunable())}")
    return task


def _data_name(data: Any, options: dict[str, Any]) -> str:
    from transferlab.runs import folder_name

    named = data if isinstance(data, (str, Path)) else options.get("images")
    return folder_name(Path(str(named)).name.split(".")[0], "data") if named else "data"


def lr_find(
    task: str,
    data: Any = None,
    *,
    out: str | Path | None = None,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    rule: str | None = None,
    **options: Any,
) -> Any:
    """Sweep the task's own training from ``start`` to ``end`` over ``steps`` steps and suggest
    ``--lr`` (a ``RateFinding``) by ``rule`` (default: the task's); with ``out``, also
    ``lr_find.json`` and ``lr_find.png`` there."""
    from transferlab.engine.run import find_rate_of

    record = _task(task)
    if rule is not None and rule not in RULES:
        raise UsageError(f"--rule '{rule}' is not one of the rules", f"use one of: {', '.join(RULES)}")
    if not 0 < start < end or steps < 10:
        raise UsageError(f"a sweep from {start:g} to {end:g} over {steps} steps", "give 0 < --start < --end and "
                         "--steps of at least 10 (e.g. --start 1e-7 --end 10 --steps 100)")  # fmt: skip
    finding = find_rate_of(record.recipe(), data, sweep={"start": start, "end": end, "steps": steps, "rule": rule},
                           **options)  # fmt: skip
    if out is not None:
        finding.write(Path(out))
    return finding


def tune(
    task: str,
    data: Any = None,
    *,
    trials: int,
    timeout: float | None = None,
    storage: str | None = None,
    study: str | None = None,
    space: str | Path | dict[str, Any] | None = None,
    pruner: str = "median",
    out: str | Path | None = None,
    sampler_seed: int = 0,
    **fixed: Any,
) -> Any:
    """A study of ``trials`` runs of ``task`` on DATA (shared with every other worker on the same
    ``storage`` and ``study``); ``fixed`` options hold for every trial and leave the space. Returns
    the study's ``TuneResult`` (its files are under ``out``, default ``runs/tune/STUDY``)."""
    from transferlab.tune.report import write_study
    from transferlab.tune.space import read_space, search_space
    from transferlab.tune.study import PRUNERS, StudySpec, storage_url, work

    record = _task(task)
    if trials < 1:
        raise UsageError(f"--trials {trials} must be at least 1", "e.g. --trials 20")
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--timeout {timeout:g} must be positive seconds", "e.g. --timeout 3600, or leave it out")
    if pruner not in PRUNERS:
        raise UsageError(f"--pruner '{pruner}' is not one of the pruners", f"use one of: {', '.join(PRUNERS)}")
    if str(fixed.get("devices", 1)) != "1" or int(fixed.get("num_nodes", 1)) != 1:
        raise UsageError("tune trains each trial in one process (--devices 1)",
                         "start several tune workers on one --storage to use more devices or machines")  # fmt: skip
    if fixed.get("lr") == "auto":
        raise UsageError("--lr auto in a study", "leave --lr out (the study searches it) or give it a number")
    fixed = {k: v for k, v in fixed.items() if v is not None}
    record.options(**fixed).check()  # the fixed options, checked once before any trial
    spec_space = space if isinstance(space, dict) else read_space(Path(space)) if space else record.tuning.space
    dims = search_space(record.options, spec_space, fixed)
    name = study or f"{task}-{_data_name(data, fixed)}"
    root = Path(out) if out else Path("runs") / "tune" / name
    spec = StudySpec(record, data, fixed, dims, root, name, storage_url(storage, root), trials, timeout, pruner,
                     sampler_seed)  # fmt: skip
    found = work(spec)
    return write_study(found, record, root, fixed)
