"""Shared Rich consoles: results go to stdout, messages (warnings, errors, progress) to stderr."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from transferlab.cli.options import refuse_compare_with_resume


class ResultConsole(Console):
    """Results are printed once: by rank 0 of a data-parallel run (the others trained the same run)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        from transferlab.engine.fabric import is_main_process

        if is_main_process():
            super().print(*objects, **kwargs)


# Markup off by default: paths, class names and messages are the user's text, and a "[...]" in
# them must print as written. Styled lines pass markup=True and escape() their user text.
out = ResultConsole(highlight=False, markup=False)
err = Console(stderr=True, highlight=False, markup=False)


def show_warnings_on_console() -> None:
    """Print Python warnings as one readable ``warning:`` block instead of file:line noise."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        err.print(f"[yellow]warning:[/] {escape(str(message))}", markup=True, highlight=False, soft_wrap=True)

    warnings.showwarning = show


def print_rows(rows: list[dict], title: str, report: object = None) -> None:
    """A result table (one row per dict), then where its report is."""
    from rich.table import Table

    table = Table(title=title)
    for column in rows[0] if rows else []:
        table.add_column(str(column))
    for row in rows:
        table.add_row(*[str(v) for v in row.values()])
    out.print(table)
    if report is not None:
        out.print(f"report: {report}")


def train_or_compare(
    api: Any, data: Any, compare: str | None, resume: Any, out_dir: Any, options: dict,
    summary: Callable[[Any], list[str]],
) -> None:  # fmt: skip
    """A strategy task's ``train`` command (segment, detect): ``--compare`` trains each strategy on
    one split into one table, else one run (or its resume), summed up by ``summary(result)``."""
    refuse_compare_with_resume(compare, resume)
    if compare:
        results = api.compare(data, [s.strip() for s in compare.split(",") if s.strip()], out=out_dir, **options)
        report = results[0].run_dir.parent / "report.html"
        print_rows([r.row() for r in results], "held-out scores per strategy", report)
        return
    result = api.train(data, out=out_dir, resume=resume, **options)
    for line in summary(result) if result.scores else []:
        out.print(line)
    out.print(f"report: {result.report}")
