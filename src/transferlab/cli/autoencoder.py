"""``transferlab autoencoder pretrain``: an encoder learnt from unlabelled images, for transfer."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out
from transferlab.cli.data import DATA_HELP
from transferlab.cli.options import RESUME, with_options
from transferlab.options.autoencoder import AutoencoderOptions


@with_options(AutoencoderOptions)
def pretrain(
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP + " Labels, if any, are ignored."),
    resume: Path = RESUME,
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/autoencoder/ENCODER-TIME)."),
    options: dict | None = None,
) -> None:
    """Pretrain a convolutional autoencoder; then `classify TARGET --backbone ae:RUN` transfers its encoder."""
    from transferlab.tasks.autoencoder import pretrain as run_pretrain

    result = run_pretrain(data, out=out_dir, resume=resume, **(options or {}))
    out.print(f"{result.run_dir}: final loss {result.losses[-1]:.4f} ({result.seconds:.0f} s)")
    out.print(f"transfer it: transferlab classify TARGET --backbone ae:{result.run_dir} --strategy full")
    out.print(f"report: {result.report}")
