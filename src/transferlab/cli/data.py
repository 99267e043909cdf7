"""``transferlab data``: check a dataset and show what training would see."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli.console import out

DATA_HELP = (
    "A folder (DATA/<class>/ or DATA/train|val/<class>/), a .zip/.tar/.tar.gz of one, "
    "a path,label CSV, or digits, cifar10, mnist, fashion-mnist."
)


def data(
    source: str = typer.Argument(..., metavar="DATA", help=DATA_HELP),
    val_fraction: float = typer.Option(
        0.2, "--val-fraction", help="Share split off for validation when DATA has none."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of that split."),
    strict: bool = typer.Option(False, "--strict", help="Fail on unreadable files instead of skipping them."),
    data_root: Path = typer.Option(None, "--data-root", help="Local copy of a built-in dataset."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Check DATA: decode every image, show classes and the train/val split."""
    import numpy as np

    from transferlab.data import load_data

    splits = load_data(source, val_fraction=val_fraction, seed=seed, strict=strict, data_root=data_root)
    train_counts = np.bincount(splits.train.labels, minlength=splits.num_classes)
    val_counts = np.bincount(splits.val.labels, minlength=splits.num_classes)
    if as_json:
        payload = {
            "description": splits.description,
            "validation": splits.val_origin,
            "classes": [
                {"name": c, "train": int(t), "val": int(v)} for c, t, v in zip(splits.classes, train_counts, val_counts)
            ],
            "skipped": [{"path": b.path, "reason": b.reason} for b in splits.skipped],
        }
        print(json.dumps(payload, indent=2))
        return
    from rich.table import Table

    out.print(splits.summary())
    table = Table()
    for column in ("class", "train", "val"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, n_train, n_val in zip(splits.classes, train_counts, val_counts):
        table.add_row(name, str(n_train), str(n_val))
    out.print(table)
