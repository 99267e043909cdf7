"""``transferlab demo`` and ``transferlab export``."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out


def demo(
    data: str = typer.Option(
        None, "--data", help="Run the demo on this local dataset instead of the built-in digits scenario."
    ),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Where to write the runs (default: runs/demo-...)."),
    seed: int = typer.Option(0, "--seed"),
    skip_extras: bool = typer.Option(False, "--skip-extras", help="Only the transfer comparison (no GAN, no style)."),
) -> None:
    """Show a real transfer gain, offline, measured against training from scratch, then a short GAN
    and a style-transfer section (about 3 min on 2 CPU cores)."""
    from transferlab.cli.classify import show_results
    from transferlab.tasks.demo import run_demo

    sections = ("classify",) if skip_extras else ("classify", "gan", "style")
    results, report, extras = run_demo(out_dir, data=data, seed=seed, sections=sections)
    show_results(results)
    verdict = report.parent / "verdict.txt"
    if verdict.is_file():
        out.print(verdict.read_text().strip())
    for name, path in extras.items():
        out.print(f"{name} report: {path}")


def export(
    run: Path = typer.Argument(..., help="A classify, adapt, segment or detect run directory."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript."),
    out_file: Path = typer.Option(None, "--out", "-o", help="Output file (default: RUN/model.onnx or RUN/model.pt)."),
) -> None:
    """Export a trained classifier, segmenter (ONNX, TorchScript) or detector (ONNX) for deployment."""
    from transferlab.tasks.export import export as run_export

    out.print(f"wrote {run_export(run, fmt, out_file)}")
