"""``transferlab adapt``: domain adaptation, always beside the source-only baseline."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import print_rows


def adapt(
    source: str = typer.Option(..., "--source", help="Labelled source DATA (folder, archive, CSV, built-in)."),
    target: str = typer.Option(..., "--target", help="Target DATA; its labels are used only to measure."),
    method: str = typer.Option("dann", "--method", help="Comma-separated: joint, dann, cdan, coral."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds; the table shows mean +- std."),
    backbone: str = typer.Option("lenet", "--backbone", help="lenet (28 px grey) or a timm name (ImageNet)."),
    img_size: int = typer.Option(None, "--img-size", help="Common input size [28 for lenet, 224 otherwise]."),
    epochs: int = typer.Option(10, "--epochs"),
    iters: int = typer.Option(500, "--iters-per-epoch"),
    batch_size: int = typer.Option(64, "--batch-size", help="Per domain."),
    lr: float = typer.Option(0.01, "--lr"),
    trade_off: float = typer.Option(1.0, "--trade-off", help="lambda: weight of the alignment or target term."),
    target_labels: int = typer.Option(0, "--target-labels", help="Labelled target images per class (joint)."),
    device: str = typer.Option("auto", "--device"),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Folder for the table and report [runs/adapt/...]."),
) -> None:
    """Adapt a classifier from a labelled --source to an unlabelled --target domain."""
    from transferlab.errors import UsageError
    from transferlab.tasks.adapt import adapt as run_adapt

    try:
        seed_list = [int(s) for s in seeds.split(",")]
    except ValueError:
        raise UsageError(f"--seeds '{seeds}' is not a list of integers", "e.g. --seeds 0,1,2") from None
    import time

    folder = out_dir or Path("runs") / "adapt" / time.strftime("%Y%m%d-%H%M%S")
    rows = run_adapt(
        source, target, methods=[m.strip() for m in method.split(",") if m.strip()], seeds=seed_list, out=folder,
        backbone=backbone, img_size=img_size, epochs=epochs, iters_per_epoch=iters, batch_size=batch_size, lr=lr,
        trade_off=trade_off, target_labels=target_labels, device=device,
    )  # fmt: skip
    print_rows(rows, f"{source} -> {target}: target accuracy on held-out target labels", folder / "report.html")
