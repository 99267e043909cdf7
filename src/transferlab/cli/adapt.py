"""``transferlab adapt``: domain adaptation, always beside the source-only baseline."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli.console import print_rows
from transferlab.cli.options import with_options
from transferlab.options.adapt import AdaptOptions


@with_options(AdaptOptions, exclude=("seed",))
def adapt(
    source: str = typer.Option(None, "--source", help="Labelled source DATA (folder, archive, CSV, built-in)."),
    target: str = typer.Option(None, "--target", help="Target DATA; its labels are used only to measure."),
    method: str = typer.Option("dann", "--method", help="Comma-separated: joint, dann, cdan, coral."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds; the table shows mean +- std."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Folder of the runs, table and report."),
    resume: Path = typer.Option(None, "--resume", help="Continue a stopped study (its folder) exactly."),
    options: dict | None = None,
) -> None:
    """Adapt a classifier from a labelled --source to an unlabelled --target domain; each method
    and seed is a classifier run (predict, evaluate, export and serve take it)."""
    from transferlab.errors import UsageError
    from transferlab.runs import default_run_dir
    from transferlab.tasks.adapt import STUDY_FILE
    from transferlab.tasks.adapt import adapt as run_adapt

    options = options or {}
    if resume is not None:
        try:
            study = json.loads((resume / STUDY_FILE).read_text())
        except (OSError, ValueError):
            raise UsageError(
                f"{resume} is not an adapt study (no readable {STUDY_FILE})", "pass the --out of an adapt run"
            ) from None
        source, target = source or study["source"], target or study["target"]
        method, seeds = ",".join(study["methods"]), ",".join(map(str, study["seeds"]))
        options = {**study["options"], **options}
    if source is None or target is None:
        raise UsageError("--source and --target are needed", "e.g. --source mnist/ --target usps/")
    try:
        seed_list = [int(s) for s in seeds.split(",")]
    except ValueError:
        raise UsageError(f"--seeds '{seeds}' is not a list of integers", "e.g. --seeds 0,1,2") from None
    folder = resume or out_dir or default_run_dir("adapt", "study")
    methods = [m.strip() for m in method.split(",") if m.strip()]
    rows = run_adapt(source, target, methods=methods, seeds=seed_list, out=folder, resume=resume is not None, **options)
    print_rows(rows, f"{source} -> {target}: target accuracy on held-out target labels", folder / "report.html")
