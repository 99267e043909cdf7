"""The one side-by-side table every task writes when it compares runs (classify strategies, GAN
transfer against scratch, translation encoders, adaptation methods): ``comparison.json`` (one
schema), ``comparison.csv`` (the rows) and ``report.html`` (title, intro, the table, then the
task's own pictures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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


@dataclass
class StrategyResult:
    """One run of a task whose ``--compare`` sets strategies side by side (segment, detect): the
    best epoch's held-out scores, and its table row of the columns the task names."""

    name: str
    run_dir: Path
    report: Path
    scores: dict[str, Any]  # the best epoch's held-out metrics
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: The table's columns: label -> key of ``scores``.
    columns: ClassVar[dict[str, str]] = {}

    def row(self) -> dict[str, Any]:
        scores = {label: self.scores.get(key) for label, key in self.columns.items()}
        return {"strategy": self.name, **scores, "seconds": round(self.seconds, 1)}


@dataclass(frozen=True)
class StrategyStudy:
    """What a dense task's ``--compare`` needs: its name, training function, data reader, options
    class, known strategies, the note under its table and the picture each run shows."""

    task: str
    train: Callable[..., Any]  # train(data, out=, name=, **options) -> a result with .row(), .run_dir, .name
    read_data: Callable[[Any, Any], Any]  # (DATA, options) -> data with .description and .summary()
    options_cls: type
    strategies: tuple[str, ...]
    note: str
    picture: str  # a file in each run folder
    caption: str  # "{name}: ..." under which it is shown


def compare_strategies(study: StrategyStudy, data: Any, strategies: list[str], out: Path | None,
                       options: dict[str, Any]) -> list[Any]:  # fmt: skip
    """Each strategy trained on one split, budget and seed into ``out/<strategy>``; one table."""
    from transferlab.errors import UsageError
    from transferlab.runs import default_run_dir, folder_name

    unknown = [s for s in strategies if s not in study.strategies]
    if unknown or not strategies:
        raise UsageError(f"--compare {','.join(strategies)}: unknown {', '.join(unknown)}",
                         f"use some of: {', '.join(study.strategies)}")  # fmt: skip
    opts = study.options_cls(**{k: v for k, v in options.items() if v is not None})
    opts.check()
    read = study.read_data(data, opts)  # read once: every strategy trains on the same split
    root = Path(out) if out else default_run_dir(study.task, "compare")
    results = [study.train(read, out=root / folder_name(s), name=s, **{**options, "strategy": s}) for s in strategies]
    table = Comparison(study.task, f"{study.task}: strategies compared on {read.description}",
                       [r.row() for r in results], {"data": read.summary()}, note=study.note)  # fmt: skip

    def pictures(report: HtmlReport) -> None:
        for r in results:
            report.heading(study.caption.format(name=r.name)).image(r.run_dir / study.picture, r.name)

    write_comparison(root, table, pictures)
    return results
