"""The one side-by-side table every task writes when it compares runs (classify strategies, GAN
transfer against scratch, translation encoders, adaptation methods): ``comparison.json`` (one
schema), ``comparison.csv`` (the rows) and ``report.html`` (title, intro, the table, then the
task's own pictures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.reports.html import HtmlReport

FORMAT = "transferlab-comparison"


@dataclass
class Comparison:
    task: str
    title: str
    rows: list[dict[str, Any]]
    #: What every row shares (options, data, the FID extractor and counts ...), kept with the table.
    context: dict[str, Any] = field(default_factory=dict)
    intro: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "task": self.task, "title": self.title, "rows": self.rows, "context": self.context}


def write_comparison(root: Path, comparison: Comparison, pictures: Callable[[HtmlReport], Any] | None = None) -> Path:
    """Write the table (JSON and CSV) and the report into ``root``; ``pictures`` adds the task's
    (and draws them). In a data-parallel run rank 0 alone writes: the other ranks return at once."""
    from transferlab.engine.fabric import is_main_process
    from transferlab.io import write_csv, write_json

    if not is_main_process():
        return root / "report.html"

    root.mkdir(parents=True, exist_ok=True)
    write_json(root / "comparison.json", comparison.as_dict())
    write_csv(root / "comparison.csv", comparison.rows)
    report = HtmlReport(comparison.title)
    if comparison.intro:
        report.text(comparison.intro)
    if comparison.note:
        report.text(comparison.note, note=True)
    report.table(comparison.rows)
    if pictures is not None:
        pictures(report)
    return report.save(root / "report.html")
