"""``transferlab autoencoder pretrain``: an encoder learnt from unlabelled images, for transfer."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out
from transferlab.cli.data import DATA_HELP


def pretrain(
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP + " Labels, if any, are ignored."),
    encoder: str = typer.Option("resnet10t", "--encoder", help="A timm architecture (trained from scratch)."),
    img_size: int = typer.Option(32, "--img-size", help="A power of two: 32, 64, 128..."),
    steps: int = typer.Option(2000, "--steps"),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr"),
    noise: float = typer.Option(0.0, "--noise", help="Denoising: std of input noise (0 = plain autoencoder)."),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder [runs/autoencoder/TIME]."),
) -> None:
    """Pretrain a convolutional autoencoder; then `classify TARGET --backbone ae:RUN` transfers its encoder."""
    from transferlab.tasks.autoencoder import pretrain as run_pretrain

    result = run_pretrain(
        data, out=out_dir, encoder=encoder, img_size=img_size, steps=steps, batch_size=batch_size, lr=lr,
        noise=noise, seed=seed, device=device,
    )  # fmt: skip
    out.print(f"{result.run_dir}: final loss {result.losses[-1]:.4f} ({result.seconds:.0f} s)")
    out.print(f"transfer it: transferlab classify TARGET --backbone ae:{result.run_dir} --strategy full")
    out.print(f"report: {result.report}")
