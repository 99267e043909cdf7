"""``transferlab gan train`` and ``transferlab gan sample``."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out
from transferlab.cli.data import DATA_HELP
from transferlab.cli.options import RESUME, refuse_compare_with_resume, with_options
from transferlab.options.gan import GanOptions


@with_options(GanOptions)
def train(
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP + " A flat folder of images works too."),
    compare: str = typer.Option(None, "--compare", help="scratch: also train from scratch and compare."),
    resume: Path = RESUME,
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/gan/ARCH-TIME)."),
    options: dict | None = None,
) -> None:
    """Train a GAN on DATA; with --init/--freeze-d or --d-features lite0, transfer into it."""
    from transferlab.errors import UsageError
    from transferlab.tasks import gan

    options = options or {}
    if compare not in (None, "scratch"):
        raise UsageError(f"--compare {compare}: only 'scratch' can be compared", "use --compare scratch")
    refuse_compare_with_resume(compare, resume)
    if compare:
        results = gan.compare(data, out=out_dir, **options)
        for r in results:
            out.print(f"{r.name}: {_score(r)} ({r.seconds:.0f} s) {r.run_dir}")
        out.print(f"report: {results[0].run_dir.parent / 'report.html'}")
        return
    result = gan.train(data, out=out_dir, resume=resume, **options)
    out.print(f"{result.run_dir}: {result.steps} steps in {result.seconds:.0f} s; {_score(result)}")
    out.print(f"report: {result.report}")


def _score(result) -> str:
    if not result.best:
        return "no FID measured"
    e = result.extractor
    return f"best FID {result.best['fid']:.2f} at step {result.best['step']} ({e['extractor']}, {e['fake']} samples)"


def sample(
    run: Path = typer.Argument(..., help="A GAN run folder."),
    count: int = typer.Option(64, "-n", "--count", help="Images to generate."),
    seed: int = typer.Option(0, "--seed", help="The same seed gives the same images."),
    label: int = typer.Option(None, "--label", help="Class index (class-conditional runs)."),
    interpolate: int = typer.Option(0, "--interpolate", help="Rows of latent interpolation to draw."),
    device: str = typer.Option("auto", "--device"),
    out_dir: Path = typer.Option(Path("samples"), "--out", "-o"),
) -> None:
    """Generate images from a trained GAN run (with a grid, and latent interpolations)."""
    from transferlab.tasks import gan

    written = gan.sample(run, count, seed=seed, out=out_dir, label=label, interpolate=interpolate, device=device)
    out.print(f"{count} image(s) and {len(written) - count} grid(s) written to {out_dir}")
