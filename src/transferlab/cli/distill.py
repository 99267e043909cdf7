"""``transferlab distill``: a small student from a fine-tuned teacher."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.classify import show_results
from transferlab.cli.console import out
from transferlab.cli.data import DATA_HELP
from transferlab.cli.options import with_options
from transferlab.errors import UsageError
from transferlab.options.distill import DistillOptions


@with_options(DistillOptions)
def distill(
    teacher: Path = typer.Argument(None, metavar="TEACHER_RUN", help="A classifier run (classify, adapt, distill)."),
    data: str = typer.Argument(None, metavar="DATA", help=DATA_HELP + " Its classes are the teacher's."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run directory (default: runs/distill/...)."),
    resume: Path = typer.Option(None, "--resume", help="Continue a stopped run exactly (its teacher and options)."),
    options: dict | None = None,
) -> None:
    """Train --student on DATA from TEACHER_RUN's softened predictions (and the labels); the student
    is an ordinary classifier run, and its report sets it beside the teacher (accuracy, size, latency)."""
    from transferlab.tasks import distill as task

    if data is None or (teacher is None and resume is None):
        raise UsageError("TEACHER_RUN and DATA are needed", "e.g. transferlab distill runs/classify/big-run photos/")
    result = task.train(teacher, data, out=out_dir, resume=resume, **(options or {}))
    show_results([result])
    for row in result.metrics.get("distillation", []):
        latency = row["latency ms (batch 1, CPU)"]
        out.print(f"  {row['network']}: {row['backbone']}, accuracy {row['accuracy']:.1%}, "
                  f"{row['parameters'] / 1e6:.1f} M parameters, {latency:.1f} ms at batch 1")  # fmt: skip
