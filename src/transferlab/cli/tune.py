"""``transferlab lr-find TASK ...`` and ``transferlab tune TASK ...``: one subcommand per task whose
registry record has ``tuning``, each taking that task's data and options as its train command does
(for ``tune``, every option given is fixed for every trial)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer

from transferlab.cli.console import out
from transferlab.cli.options import with_options
from transferlab.registry import TASKS, Task

DATA_HELP = "The task's data, as its train command reads it (a folder, an archive, a built-in name)."

lr_find_app = typer.Typer(
    help="Suggest a learning rate: a short sweep of the task's own training (Smith 2015, fastai's lr_find).",
    no_args_is_help=True,
)
tune_app = typer.Typer(
    help="Tune a task's options on Optuna: trials are runs, the study lives in SQLite or any database "
    "Optuna takes (several workers, several machines).",
    no_args_is_help=True,
)


def _lr_find_command(task: Task) -> Callable[..., None]:
    @with_options(task.options)
    def command(
        data: str = typer.Argument(None, metavar="[DATA]", help=DATA_HELP),
        start: float = typer.Option(1e-7, "--start", help="The sweep's first rate."),
        end: float = typer.Option(
            10.0, "--end", help="The sweep's last rate (it stops earlier once the loss blows up)."
        ),
        sweep_steps: int = typer.Option(100, "--sweep-steps", help="Training steps of the sweep."),
        rule: str = typer.Option(
            None,
            "--rule",
            help="How the curve is read (default: the task's own, the one --lr auto uses; the answer names "
            "it): steep (the steepest fall), fall (where the loss has made nine tenths of its fall from its "
            "start to its lowest), valley (the middle of that fall) or minimum (a tenth of the lowest loss's rate).",
        ),
        out_dir: Path = typer.Option(None, "--out", "-o", help="Also write lr_find.png and lr_find.json here."),
        as_json: bool = typer.Option(False, "--json", help="Print the curve and the suggestion as JSON."),
        options: dict | None = None,
    ) -> None:
        from transferlab import tune

        finding = tune.lr_find(task.name, data, out=out_dir, start=start, end=end, steps=sweep_steps, rule=rule,
                               **(options or {}))  # fmt: skip
        if as_json:
            print(json.dumps(finding.to_json()))
            return
        others = ", ".join(f"{name} {rate:.2g}" for name, rate in finding.others.items() if name != finding.rule)
        out.print(f"{task.name}: {finding.sentence()}; other rules: {others}")
        if out_dir is not None:
            out.print(f"curve: {Path(out_dir) / 'lr_find.png'}")

    command.__doc__ = f"Suggest --lr for `{task.commands[0].name}` (the same data, options and network)."
    return command


def _tune_command(task: Task) -> Callable[..., None]:
    @with_options(task.options)
    def command(
        data: str = typer.Argument(None, metavar="[DATA]", help=DATA_HELP),
        trials: int = typer.Option(..., "--trials", help="Trials in the study, across all its workers."),
        timeout: float = typer.Option(None, "--timeout", help="Seconds this worker starts trials for."),
        storage: str = typer.Option(
            None,
            "--storage",
            help="The study's database: any URL Optuna takes "
            "(postgresql://user:pass@host/db, sqlite:///file.db); default: study.db in --out.",
        ),
        study: str = typer.Option(
            None,
            "--study",
            help="The study's name (default: TASK-DATA); workers on one storage with one name share it.",
        ),
        space: Path = typer.Option(None, "--space", help="A YAML search space (default: the task's, see the README)."),
        pruner: str = typer.Option("median", "--pruner", help="median, hyperband or none."),
        sampler_seed: int = typer.Option(0, "--sampler-seed", help="Seed of the TPE sampler."),
        out_dir: Path = typer.Option(None, "--out", "-o", help="The study's folder (default: runs/tune/STUDY)."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
        options: dict | None = None,
    ) -> None:
        from dataclasses import asdict

        from transferlab import tune

        result = tune.tune(task.name, data, trials=trials, timeout=timeout, storage=storage, study=study, space=space,
                           pruner=pruner, out=out_dir, sampler_seed=sampler_seed, **(options or {}))  # fmt: skip
        if as_json:
            print(json.dumps(asdict(result), default=str))
            return
        best = f"best {result.metric} {result.best_value:.4f} (trial {result.best_trial})" if result.best_trial is not \
            None else "no trial finished"  # fmt: skip
        defaults = f", the defaults {result.defaults_value:.4f}" if result.defaults_value is not None else ""
        out.print(f"study {result.study}: {result.complete} complete, {result.pruned} pruned, {result.failed} failed; "
                  f"{best}{defaults}")  # fmt: skip
        if result.best_trial is not None:
            out.print(f"best options: {result.root / 'best.yaml'} (train it: --config {result.root / 'best.yaml'})")
        out.print(f"report: {result.report}")

    command.__doc__ = f"Tune `{task.commands[0].name}`'s options; held-out {task.tuning.metric} is the objective."
    return command


for _task in TASKS.values():
    if _task.tuning is not None:
        _example = f"Example: transferlab lr-find {_task.name} DATA"
        lr_find_app.command(_task.name, epilog=_example)(_lr_find_command(_task))
        _example = f"Example: transferlab tune {_task.name} DATA --trials 20 --storage sqlite:///study.db"
        tune_app.command(_task.name, epilog=_example)(_tune_command(_task))
