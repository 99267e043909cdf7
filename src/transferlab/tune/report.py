"""What a study leaves under its folder: ``trials.csv``, ``best.yaml`` (the best trial's options:
``--config best.yaml`` trains it again), ``best/`` (a copy of the best trial's run, where it ran on
this machine) and ``report.html`` (the optimisation history, the parameter importances, the
parallel-coordinate plot from Optuna's matplotlib visualisation, the table of trials, the best
trial against the defaults' trial)."""

from __future__ import annotations

import csv
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.io import atomic_path
from transferlab.reports.html import HtmlReport


@dataclass
class TuneResult:
    """A study as it stands: its folder, the best trial and its options, the counts."""

    root: Path
    study: str
    metric: str
    best_value: float | None
    best_trial: int | None
    best_options: dict[str, Any]
    complete: int
    pruned: int
    failed: int
    report: Path
    defaults_value: float | None = None


def _rows(trials: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for t in trials:
        if t.user_attrs.get("surplus"):
            continue
        rows.append({
            "trial": t.number, "state": t.state.name.lower(), "value": t.value,
            "last reported": t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None,
            "scorings": len(t.intermediate_values), "seconds": round(float(t.user_attrs.get("seconds", 0.0)), 1),
            "defaults": bool(t.user_attrs.get("defaults")), **t.params,
            "note": t.user_attrs.get("error", f"resumes trial {t.user_attrs['retry_of']}"
                                     if t.user_attrs.get("retry_of") is not None else ""),
        })  # fmt: skip
    return rows


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)


def _plots(study: Any, root: Path) -> list[tuple[Path, str]]:
    """Optuna's matplotlib plots that the study's trials allow (importances need two finished
    trials that differ; the parallel coordinates one searched parameter)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views

    made = []
    for name, draw, title in (
        ("history", views.plot_optimization_history, "optimisation history"),
        ("importances", views.plot_param_importances, "parameter importances (fANOVA)"),
        ("parallel", views.plot_parallel_coordinate, "parallel coordinates"),
        ("intermediate", views.plot_intermediate_values, "held-out score per scoring (pruned trials stop early)"),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib views experimental
                axes = draw(study)
        except Exception:  # noqa: BLE001 - a plot the trials cannot make yet (too few, nothing varied)
            continue
        figure = getattr(axes, "figure", None) or plt.gcf()
        figure.set_size_inches(8, 4.2)
        figure.tight_layout()
        path = root / f"{name}.png"
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=100, format="png")
        plt.close(figure)
        made.append((path, title))
    return made


def write_study(study: Any, task: Any, root: Path, fixed: dict[str, Any]) -> TuneResult:
    """The study's files under ``root`` (any worker may write them; the last one to finish leaves
    the complete picture)."""
    import yaml
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)  # read once: every count below comes from it
    rows = _rows(trials)
    root.mkdir(parents=True, exist_ok=True)
    if rows:
        _write_csv(rows, root / "trials.csv")
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    metric, best, options = task.tuning.metric, None, {}
    if finished:
        best = study.best_trial
        options = dict(best.user_attrs.get("options") or {**fixed, **best.params})
        with atomic_path(root / "best.yaml") as tmp:
            tmp.write_text(f"# {task.name}: trial {best.number} of study {study.study_name}, held-out {metric} "
                           f"{best.value:.4f}\n" + yaml.safe_dump(options, sort_keys=True))  # fmt: skip
        folder = Path(best.user_attrs.get("folder", ""))
        if folder.is_dir() and (folder / "run.json").is_file():
            target = root / "best"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target, ignore=shutil.ignore_patterns("checkpoints", "*.lock"))
    defaults = next((t for t in finished if t.user_attrs.get("defaults")), None)
    failed = sum(t.state == TrialState.FAIL for t in trials)
    pruned = sum(t.state == TrialState.PRUNED and not t.user_attrs.get("surplus") for t in trials)
    result = TuneResult(
        root, study.study_name, metric, best.value if best else None, best.number if best else None,
        options, len(finished), pruned, failed, root / "report.html", defaults.value if defaults else None,
    )  # fmt: skip
    _report(study, task, root, rows, result)
    return result


def _report(study: Any, task: Any, root: Path, rows: list[dict[str, Any]], result: TuneResult) -> None:
    report = HtmlReport(f"tune {task.name}: study {study.study_name}")
    seconds = sum(r["seconds"] for r in rows)
    saved = sum(r["seconds"] for r in rows if r["state"] == "pruned")
    report.facts({
        "task": task.name, "objective": f"held-out {result.metric} ({task.tuning.direction})",
        "trials": f"{result.complete} complete, {result.pruned} pruned, {result.failed} failed",
        "best": f"trial {result.best_trial}: {result.best_value:.4f}" if result.best_value is not None else "none yet",
        "the defaults (trial with no option searched)": (f"{result.defaults_value:.4f}" if result.defaults_value
                                                         is not None else "not run"),
        "training time": f"{seconds / 60:.1f} min in all, {saved / 60:.1f} min in trials the pruner stopped",
    })  # fmt: skip
    if result.best_options:
        report.heading("The best trial's options (best.yaml)")
        report.table([{"option": k, "value": v} for k, v in sorted(result.best_options.items())])
    for path, title in _plots(study, root):
        report.heading(title.capitalize())
        report.image(path, title)
    report.heading("Trials")
    report.table(rows)
    report.save(root / "report.html")
