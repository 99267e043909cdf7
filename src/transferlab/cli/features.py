"""``transferlab features`` and ``transferlab rank``: frozen backbones as feature extractors."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out, print_rows
from transferlab.cli.data import DATA_HELP


def features(
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP),
    backbone: str = typer.Option(
        "tf_efficientnet_lite0", "--backbone", "-b", help="A timm name (NAME:random: no weights)."
    ),
    out_file: Path = typer.Option(..., "--out", "-o", help="FILE.npz or FILE.parquet (needs pyarrow)."),
    img_size: int = typer.Option(None, "--img-size", help="Input size (default: the backbone's pretrained size)."),
    weights: Path = typer.Option(None, "--weights", help="A weights file or run for the backbone."),
    batch_size: int = typer.Option(128, "--batch-size"),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Export the pooled features of every image of DATA, with labels, for other tools."""
    from transferlab.tasks.features import export_features

    result = export_features(
        data, backbone, out_file, img_size=img_size, weights=weights, batch_size=batch_size, device=device
    )
    n, d = result.features.shape
    out.print(f"{n} x {d} features ({backbone}, {result.weights_source} weights) -> {out_file}")


def rank(
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP),
    candidates: str = typer.Option(..., "--backbones", help="Comma-separated timm names (NAME:random: no weights)."),
    img_size: int = typer.Option(None, "--img-size", help="Input size for every candidate."),
    max_images: int = typer.Option(2000, "--max-images", help="Score on a stratified subset of this many."),
    probe: bool = typer.Option(False, "--probe", help="Also measure a linear probe, to check the ranking."),
    batch_size: int = typer.Option(128, "--batch-size"),
    device: str = typer.Option("auto", "--device"),
    out_dir: Path = typer.Option(
        None, "--out", "-o", help="Folder for rank.json and report.html (default: runs/rank/TIME)."
    ),
) -> None:
    """Rank candidate backbones for DATA without fine-tuning (LogME on frozen features)."""
    from transferlab.runs import default_run_dir
    from transferlab.tasks.features import rank as run_rank

    names = [c.strip() for c in candidates.split(",") if c.strip()]
    folder = out_dir or default_run_dir("rank", "backbones")
    rows = run_rank(
        data, names, out=folder, probe=probe, img_size=img_size, max_images=max_images, batch_size=batch_size,
        device=device,
    )  # fmt: skip
    print_rows(rows, f"backbones for {data}, best first", folder / "report.html")
