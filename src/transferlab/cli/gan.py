"""``transferlab gan train`` and ``transferlab gan sample``."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out
from transferlab.cli.data import DATA_HELP


def train(
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP + " A flat folder of images works too."),
    arch: str = typer.Option(
        None, "--arch", help="dcgan (the classic) or resnet (spectral norm, hinge, EMA) [resnet]."
    ),
    img_size: int = typer.Option(None, "--img-size", help="32, 64 or 128 [64]."),
    steps: int = typer.Option(None, "--steps", help="Training steps (one D and one G update each) [5000]."),
    batch_size: int = typer.Option(None, "--batch-size", help="[64]"),
    channels: int = typer.Option(None, "--channels", help="1 or 3 [1 if every image is grey]."),
    conditional: bool = typer.Option(None, "--conditional/--unconditional", help="Class-conditional (class folders)."),
    width: int = typer.Option(None, "--width", help="Base channel width [64]."),
    lr_g: float = typer.Option(None, "--lr-g", help="Generator learning rate [2e-4]."),
    lr_d: float = typer.Option(None, "--lr-d", help="Discriminator learning rate [2e-4]."),
    augment: str = typer.Option(None, "--augment", help="DiffAugment ops: color,translation,cutout or none."),
    r1: float = typer.Option(None, "--r1", help="R1 penalty weight gamma [0 = off]."),
    ema_decay: float = typer.Option(None, "--ema-decay", help="EMA of the generator (resnet) [0.999]."),
    init: str = typer.Option(None, "--init", help="Fine-tune from this GAN run (trained on a source domain)."),
    freeze_d: int = typer.Option(None, "--freeze-d", help="FreezeD: freeze the lowest K discriminator blocks."),
    d_features: str = typer.Option(None, "--d-features", help="lite0: discriminate on frozen ImageNet features."),
    compare: str = typer.Option(None, "--compare", help="scratch: also train from scratch and compare."),
    eval_every: int = typer.Option(None, "--eval-every", help="FID/KID every N steps (0 = only at the end) [1000]."),
    fid_samples: int = typer.Option(None, "--fid-samples", help="Generated images per FID [2000]."),
    fid_features: str = typer.Option(None, "--fid-features", help="auto, inception or lite0 (offline)."),
    sample_every: int = typer.Option(None, "--sample-every", help="Sample grid every N steps [500]."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", help="[500]"),
    precision: str = typer.Option(None, "--precision", help="bf16-mixed (GPU default), 32 (CPU default)..."),
    accelerator: str = typer.Option(None, "--accelerator", help="auto, cpu or gpu."),
    compile: bool = typer.Option(None, "--compile/--no-compile", help="torch.compile both networks."),
    seed: int = typer.Option(None, "--seed"),
    resume: Path = typer.Option(None, "--resume", help="Continue a stopped run exactly."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder [runs/gan/ARCH-TIME]."),
) -> None:
    """Train a GAN on DATA; with --init/--freeze-d or --d-features lite0, transfer into it."""
    from transferlab.errors import UsageError
    from transferlab.tasks import gan

    options = {
        "arch": arch, "img_size": img_size, "steps": steps, "batch_size": batch_size, "channels": channels,
        "conditional": conditional, "width": width, "lr_g": lr_g, "lr_d": lr_d, "augment": augment,
        "r1_gamma": r1, "ema_decay": ema_decay, "init": init, "freeze_d": freeze_d, "d_features": d_features,
        "eval_every": eval_every, "fid_samples": fid_samples, "fid_features": fid_features,
        "sample_every": sample_every, "checkpoint_every": checkpoint_every, "precision": precision,
        "accelerator": accelerator, "compile": compile, "seed": seed,
    }  # fmt: skip
    options = {k: v for k, v in options.items() if v is not None}
    if compare not in (None, "scratch"):
        raise UsageError(f"--compare {compare}: only 'scratch' can be compared", "use --compare scratch")
    if compare and resume:
        raise UsageError("--compare and --resume together", "resume each run of a comparison on its own")
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
