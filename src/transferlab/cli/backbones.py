"""``transferlab backbones``: which backbones exist and where their weights would come from."""

from __future__ import annotations

import json

import typer

from transferlab.cli.console import out


def backbones(
    include_all: bool = typer.Option(False, "--all", help="List every timm model with pretrained weights."),
    pattern: str = typer.Option(None, "--filter", help="Only names matching this pattern (e.g. 'resnet*')."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List backbones and where their pretrained weights come from (built-in, cache, hub)."""
    from rich.table import Table

    from transferlab.backbones import SPEC_FORMS, list_backbones

    rows = list_backbones(include_all=include_all, pattern=pattern)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Backbones (weights: built-in and cache work offline; --weights PATH takes a file)")
    for column in ("name", "weights", "input"):
        table.add_column(column)
    for row in rows:
        style = "green" if row["weights"] in ("built-in", "cache") else None
        table.add_row(row["name"], row["weights"], row["input"], style=style)
    out.print(table)
    forms = Table(title="What every --backbone takes")
    forms.add_column("form")
    forms.add_column("meaning")
    for form, meaning in SPEC_FORMS.items():
        forms.add_row(form, meaning)
    out.print(forms)
