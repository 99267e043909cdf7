"""``transferlab demo``, ``transferlab export`` and ``transferlab benchmark``."""

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
    run: Path = typer.Argument(..., help="A classify, adapt, distill, segment or detect run directory."),
    fmt: str = typer.Option("onnx", "--format", "-f", help="onnx or torchscript."),
    out_file: Path = typer.Option(None, "--out", "-o", help="Output file (default: RUN/model.onnx or RUN/model.pt)."),
    quantize: str = typer.Option(
        None,
        "--quantize",
        help="ONNX of a classifier, segmenter or detector: int8 (static, calibrated; RUN/model.int8.onnx) or dynamic.",
    ),
    calibration: str = typer.Option(
        "300",
        "--calibration",
        help="int8: N of the run's training images to calibrate on, or (classifiers) a folder of images.",
    ),
    calibration_method: str = typer.Option(
        "percentile",
        "--calibration-method",
        help="int8: how activation ranges are chosen: percentile (99.999th, outliers saturate) or minmax.",
    ),
    data: str = typer.Option(
        None,
        "--data",
        help="Quantizing: DATA to calibrate and check on (default: a classifier run's own, split as "
        "it was; segment and detect runs need it).",
    ),
    max_drop: float = typer.Option(
        1.0, "--max-drop", help="Quantizing: refuse a model losing more points of accuracy (mIoU, mAP)."
    ),
    force: bool = typer.Option(False, "--force", help="Quantizing: keep the model even past --max-drop."),
) -> None:
    """Export a trained classifier, segmenter (ONNX, TorchScript) or detector (ONNX) for deployment;
    --quantize int8 adds an int8 ONNX model whose held-out accuracy (mIoU, mAP) is measured against
    fp32's."""
    from transferlab.errors import UsageError
    from transferlab.tasks.export import export as run_export

    if quantize is None:
        out.print(f"wrote {run_export(run, fmt, out_file)}")
        return
    if fmt != "onnx":
        raise UsageError("--quantize makes ONNX models", "use --format onnx")
    from transferlab.tasks.quantize import quantize as run_quantize

    made = run_quantize(run, mode=quantize, calibration=calibration, data=data, max_drop=max_drop, force=force,
                        out=out_file, calibration_method=calibration_method)  # fmt: skip
    out.print(f"wrote {made.fp32_path} and {made.path}")
    out.print(f"{made.metric} on {made.measured_on}: fp32 {made.fp32_score:.2%}, {made.mode} {made.int8_score:.2%} "
              f"(agreement {made.agreement:.2%}; drop {made.drop_points:.2f} points)")  # fmt: skip


def benchmark(
    run: Path = typer.Argument(..., help="A classifier (classify, adapt, distill) or segment run."),
    batch_sizes: str = typer.Option("1,8", "--batch-sizes", help="Comma-separated batch sizes to time."),
    threads: int = typer.Option(None, "--threads", help="CPU threads for torch (default: torch's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
) -> None:
    """Latency and throughput of RUN on this machine: torch fp32, ONNX fp32 and ONNX int8 (after
    `export --quantize int8`)."""
    import json

    from transferlab.cli.console import print_rows
    from transferlab.errors import UsageError
    from transferlab.tasks.benchmark import benchmark as run_benchmark

    try:
        sizes = tuple(int(b) for b in batch_sizes.split(","))
    except ValueError:
        raise UsageError(f"--batch-sizes '{batch_sizes}' is not a list of integers", "e.g. --batch-sizes 1,8") from None
    if not sizes or min(sizes) < 1:
        raise UsageError(f"--batch-sizes '{batch_sizes}' needs sizes of 1 or more", "e.g. --batch-sizes 1,8")
    rows = run_benchmark(run, sizes, threads)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print_rows(rows, f"{run.name}: on this machine (CPU)")
