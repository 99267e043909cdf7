"""Rich progress bars with ETA, shared by every long-running step (quiet under TRANSFERLAB_QUIET=1)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def enabled() -> bool:
    return os.environ.get("TRANSFERLAB_QUIET", "") in ("", "0")


def make_progress(*extra_columns: Any, transient: bool = False) -> Any:
    """A Rich progress display on stderr: description, bar, count, elapsed, ETA, then ``extra_columns``."""
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
    return Progress(*columns, *extra_columns, console=Console(file=sys.stderr), transient=transient)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` under a progress bar."""
    if not enabled():
        yield from items
        return
    with make_progress(transient=True) as bar:
        yield from bar.track(items, total=total, description=description)
