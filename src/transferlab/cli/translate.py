"""``transferlab translate train | evaluate | apply``: image-to-image translation."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli.console import out, print_rows
from transferlab.cli.data import DATA_HELP
from transferlab.cli.options import RESUME, refuse_compare_with_resume, with_options
from transferlab.options.translate import TranslateOptions


@with_options(TranslateOptions)
def train(
    data: str = typer.Argument(
        ..., metavar="DATA", help=DATA_HELP + " For --task paired: DATA/A + DATA/B, or AB images."
    ),
    compare: str = typer.Option(None, "--compare", help="Encoders to compare, e.g. scratch,imagenet,ae:runs/ae."),
    resume: Path = RESUME,
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/translate/TASK-ENCODER-TIME)."),
    options: dict | None = None,
) -> None:
    """Train a U-Net with a pretrained encoder to colorize, superres, inpaint, denoise, edges or paired A->B."""
    from transferlab.tasks import translate

    options = options or {}
    refuse_compare_with_resume(compare, resume)
    if compare:
        entries = [e.strip() for e in compare.split(",") if e.strip()]
        results = translate.compare(data, entries, out=out_dir, **options)
        from transferlab.tasks.translate.report import comparison_rows

        print_rows(comparison_rows(results), "held-out scores per encoder", results[0].run_dir.parent / "report.html")
        return
    result = translate.train(data, out=out_dir, resume=resume, **options)
    if result.scores:
        s = result.scores
        out.print(f"{result.run_dir}: held-out PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.3f}, "
                  f"Lite0 perceptual distance {s['lite0_distance']:.4f} ({result.seconds:.0f} s)")  # fmt: skip
    out.print(f"report: {result.report}")


def evaluate(
    run: Path = typer.Argument(..., help="A translate run."),
    data: str = typer.Argument(..., metavar="DATA", help="Photos (or A/B pairs for a paired run): all are held out."),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """PSNR, SSIM and the Lite0 perceptual distance of RUN on DATA."""
    from transferlab.tasks import translate

    scores = translate.evaluate(run, data, device=device)
    if as_json:
        print(json.dumps(scores, indent=2))
        return
    out.print(f"{scores['images']} images ({scores['task']}): PSNR {scores['psnr']:.2f} dB, SSIM {scores['ssim']:.3f}, "
              f"Lite0 perceptual distance {scores['lite0_distance']:.4f}")  # fmt: skip


def apply(
    run: Path = typer.Argument(..., help="A translate run."),
    images: list[Path] = typer.Argument(..., help="Images or folders (any size; inpaint: RGBA, holes transparent)."),
    out_dir: Path = typer.Option(Path("translated"), "--out", "-o", help="Folder for the results."),
    batch_size: int = typer.Option(8, "--batch-size", help="Tiles per forward pass."),
    tile: int = typer.Option(256, "--tile", help="Larger images are done in overlapping tiles of this side."),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Translate IMAGES with a trained run (tiles with overlap for large images)."""
    from transferlab.tasks import translate

    written = translate.apply(run, list(images), out=out_dir, batch_size=batch_size, tile=tile, device=device)
    out.print(f"{len(written)} image(s) written to {out_dir}")
