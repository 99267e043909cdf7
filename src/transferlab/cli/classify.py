"""``transferlab classify`` and ``transferlab evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli import robustness as robust
from transferlab.cli.console import out
from transferlab.cli.data import DATA_HELP
from transferlab.cli.options import with_options
from transferlab.errors import UsageError
from transferlab.options.classify import ClassifyOptions


@with_options(ClassifyOptions)
def classify(
    data: str = typer.Argument(None, metavar="DATA", help=DATA_HELP),
    compare: str = typer.Option(
        None, "--compare", help="Comma-separated strategies to train on the same split, e.g. scratch,linear,full."
    ),
    augment_seeds: str = typer.Option("0,1,2", "--augment-seeds", help="With --augment-with: seeds to compare over."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run directory (default: runs/classify/...)."),
    resume: Path = typer.Option(None, "--resume", help="Continue a stopped run exactly (its options are reused)."),
    options: dict | None = None,
) -> None:
    """Fine-tune a pretrained backbone on DATA, measured against training from scratch."""
    from transferlab.tasks import classify as task

    options = options or {}
    if data is None:
        raise UsageError(
            "DATA is missing", "give a folder, archive, CSV or built-in name, e.g. `transferlab classify digits`"
        )
    if options.get("augment_with") is not None and (resume is not None or compare):
        raise UsageError("--augment-with runs its own with/without comparison", "leave out --compare and --resume")
    if options.get("augment_with") is not None:
        try:
            seeds = [int(x) for x in augment_seeds.split(",")]
        except ValueError:
            raise UsageError(f"--augment-seeds '{augment_seeds}' is not a list of integers", "e.g. 0,1,2") from None
        summary = task.augmentation_study(data, seeds, out=out_dir, **options)
        out.print(summary["verdict"])
        return
    if resume is not None:
        results = [task.fit(data, resume=resume, **options)]
    elif compare:
        results = task.compare(data, [s.strip() for s in compare.split(",") if s.strip()], out=out_dir, **options)
    else:
        results = [task.fit(data, out=out_dir, **options)]
    show_results(results)


def show_results(results: list) -> None:
    from rich.table import Table

    if not results:
        return

    table = Table(title="validation results")
    rows = [r.row() for r in results]
    for column in rows[0]:
        if column == "strategy":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*[f"{v:.1%}" if isinstance(v, float) and k != "wall s" else str(v) for k, v in row.items()])
    out.print(table)
    report = results[0].run_dir.parent / "report.html" if len(results) > 1 else results[0].run_dir / "report.html"
    out.print(f"report: {report}")


def evaluate(
    run: Path = typer.Argument(..., help="A classify run directory."),
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP),
    data_root: str = typer.Option(None, "--data-root"),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print all metrics as JSON."),
    corruptions: str = robust.CORRUPTIONS,
    severities: str = robust.SEVERITIES,
    seed: int = robust.SEED,
) -> None:
    """Accuracy, top-5, per-class precision/recall/F1 and most-confused pairs of RUN on DATA; with
    --corruptions, the accuracy under ImageNet-C's corruptions too."""
    from rich.table import Table

    from transferlab.tasks import classify as task

    metrics = task.evaluate(run, data, device=device, data_root=data_root, corruptions=corruptions,
                            severities=robust.parse_severities(severities), seed=seed)  # fmt: skip
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    out.print(
        f"{metrics['images']} images: accuracy {metrics['accuracy']:.1%}, "
        f"top-5 {metrics['top5_accuracy']:.1%}, macro F1 {metrics['macro_f1']:.3f}"
    )
    table = Table()
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in metrics["per_class"]:
        table.add_row(
            row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
        )
    out.print(table)
    for pair in metrics["most_confused"][:5]:
        out.print(f"  {pair['true']} -> {pair['predicted']}: {pair['count']}")
    if "corruptions" in metrics:
        robust.show_robustness(metrics["corruptions"])
