"""The corruption flags every ``evaluate`` command takes (classify, segment, detect), and their table."""

from __future__ import annotations

import typer

from transferlab.cli.console import out
from transferlab.errors import UsageError

CORRUPTIONS = typer.Option(
    None, "--corruptions", help="Also score RUN on corrupted copies of the images: all (ImageNet-C's 15 at 5 "
    "severities; the value when the flag ends the line or precedes another), the families noise, blur, weather, "
    "digital, or names such as fog,jpeg_compression.",
)  # fmt: skip
SEVERITIES = typer.Option("1,2,3,4,5", "--severities", help="With --corruptions: the severities (1-5).")
SEED = typer.Option(0, "--seed", help="With --corruptions: the seed of the random ones (noise, snow, ...).")


def parse_severities(text: str) -> list[int]:
    """``--severities 1,3,5`` -> [1, 3, 5] (range-checked by ``robustness.check_severities``)."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--severities '{text}' is not a list of integers", "e.g. --severities 1,3,5") from None


def show_robustness(result: dict) -> None:
    """The clean metric, the mean under corruption and the drop, then one row per corruption."""
    from rich.table import Table

    out.print(
        f"under {len(result['table'])} corruptions x {len(result['severities'])} severities: {result['metric']} "
        f"{result['mean']:.4f} against {result['clean']:.4f} clean ({result['relative_drop']:.1%} lower)"
    )
    table = Table()
    table.add_column("corruption")
    table.add_column(f"mean {result['metric']}", justify="right")
    for name, value in result["by_corruption"].items():
        table.add_row(name.replace("_", " "), f"{value:.4f}")
    out.print(table)
