"""``transferlab predict``: classify images with an ImageNet model or a trained run."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli.console import out


def predict(
    images: list[Path] = typer.Argument(..., help="Image files and/or folders of images."),
    model: str = typer.Option(None, "--model", "-m", help="A pretrained backbone name (ImageNet classes)."),
    checkpoint: Path = typer.Option(None, "--checkpoint", "-c", help="A run directory written by transferlab."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for --model (.safetensors/.pth)."),
    topk: int = typer.Option(5, "--topk", "-k", help="How many classes to show per image."),
    batch_size: int = typer.Option(32, "--batch-size", "-b"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one object per image)."),
) -> None:
    """Predict the top classes of images."""
    from transferlab.tasks.predict import predict as run_predict

    results = run_predict(
        images, model=model, checkpoint=checkpoint, weights=weights, topk=topk, batch_size=batch_size, device=device
    )
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
        return
    from rich.table import Table

    table = Table()
    table.add_column("image")
    table.add_column("top classes (probability)")
    for result in results:
        top = ", ".join(f"{name} ({p:.1%})" for _, name, p in result.top)
        table.add_row(result.path, top)
    out.print(table)
