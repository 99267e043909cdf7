"""Progress for every long step: Rich bars with ETA on a terminal; plain lines at a steady interval
where no terminal is attached (SLURM and nohup logs, CI); nothing under TRANSFERLAB_QUIET=1.

``TRANSFERLAB_PROGRESS_SECONDS`` sets the interval of the plain lines (default 30).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def enabled() -> bool:
    return os.environ.get("TRANSFERLAB_QUIET", "") in ("", "0")


def on_terminal() -> bool:
    return sys.stderr.isatty() or os.environ.get("TRANSFERLAB_PROGRESS") == "bars"


def announce(message: str) -> None:
    """One line for the person at the terminal (stderr; silent under TRANSFERLAB_QUIET)."""
    if enabled():
        print(message, file=sys.stderr, flush=True)


def make_progress(*extra_columns: Any, transient: bool = False, redirect_stdout: bool = True) -> Any:
    """A Rich progress display on stderr: description, bar, count, elapsed, ETA, then ``extra_columns``;
    ``redirect_stdout``: prints during it are shown above the bar (else they go where stdout goes)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    return Progress(*columns, *extra_columns, console=Console(file=sys.stderr), transient=transient,
                    redirect_stdout=redirect_stdout)  # fmt: skip


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class PlainLines:
    """``title: 120/5000 (2.4%) 3.1/s elapsed 0:00:39 ETA 0:26:14 info`` every ``interval`` seconds."""

    def __init__(self, title: str, total: int, done: int, interval: float | None = None) -> None:
        self.title, self.total, self.done, self.start_done = title, total, done, done
        self.interval = float(os.environ.get("TRANSFERLAB_PROGRESS_SECONDS", 30)) if interval is None else interval
        self.started = self.last = time.monotonic()
        self.info = ""

    def update(self, steps: int = 0, info: str | None = None, force: bool = False) -> None:
        self.done += steps
        self.info = self.info if info is None else info
        now = time.monotonic()
        if force or now - self.last >= self.interval:
            self.last = now
            print(self.line(now), file=sys.stderr, flush=True)

    def line(self, now: float) -> str:
        elapsed = now - self.started
        rate = (self.done - self.start_done) / elapsed if elapsed > 0 else 0.0
        eta = _clock((self.total - self.done) / rate) if rate > 0 else "?"
        share = self.done / self.total if self.total else 1.0
        return (
            f"{self.title}: {self.done}/{self.total} ({share:.1%}) {rate:.2f}/s "
            f"elapsed {_clock(elapsed)} ETA {eta} {self.info}"
        ).rstrip()


class StepProgress:
    """One bar (or plain lines) over ``total`` steps with a short note (losses); silent when quiet."""

    def __init__(self, total: int, done: int, title: str, enabled_here: bool = True) -> None:
        self.total, self.done, self.title = total, done, title
        self.active = enabled_here and enabled()
        self._bar: Any = None
        self._plain: PlainLines | None = None

    def __enter__(self) -> StepProgress:
        if not self.active:
            return self
        if not on_terminal():
            self._plain = PlainLines(self.title, self.total, self.done)
            self._plain.update(force=True)
            return self
        from rich.progress import TextColumn

        self._bar = make_progress(TextColumn("{task.fields[info]}"))
        self._bar.__enter__()
        self._task = self._bar.add_task(self.title, total=self.total, completed=self.done, info="")
        return self

    def advance(self, info: str | None = None, steps: int = 1) -> None:
        if self._plain is not None:
            self._plain.update(steps, info)
        elif self._bar is not None:
            self._bar.update(self._task, advance=steps, **({"info": info} if info is not None else {}))

    def note(self, info: str) -> None:
        self.advance(info, steps=0)

    def retotal(self, total: int) -> None:
        """A new total (a time budget changed the epochs to come)."""
        self.total = total
        if self._plain is not None:
            self._plain.total = total
        elif self._bar is not None:
            self._bar.update(self._task, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._plain is not None and exc[0] is None:
            self._plain.update(force=True)
        if self._bar is not None:
            self._bar.__exit__(*exc)


def track(items: Iterable[T], description: str, total: int | None = None, redirect_stdout: bool = True) -> Iterator[T]:
    """Iterate ``items`` under a progress bar (plain lines without a terminal); ``redirect_stdout``
    as in ``make_progress``."""
    if not enabled():
        yield from items
        return
    if not on_terminal():
        plain = PlainLines(description, total or 0, 0)
        for item in items:
            yield item
            plain.update(1)
        return
    with make_progress(transient=True, redirect_stdout=redirect_stdout) as bar:
        yield from bar.track(items, total=total, description=description)
