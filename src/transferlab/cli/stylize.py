"""``transferlab stylize``: neural style transfer by optimisation."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out


def stylize(
    content: Path = typer.Argument(..., help="The content image."),
    style: list[Path] = typer.Option(..., "--style", "-s", help="A style image (repeat for several)."),
    style_mix: str = typer.Option(None, "--style-mix", help="Weights of several styles, e.g. 0.7,0.3."),
    size: int = typer.Option(512, "--size", help="Output size: the longer side in pixels."),
    network: str = typer.Option("lite0", "--network", help="lite0 (built in, offline), vgg16 or vgg19."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for the feature network."),
    smoothing: str = typer.Option(None, "--smoothing", help="Activation smoothing: none, channel or all."),
    style_weight: float = typer.Option(5.0, "--style-weight"),
    content_weight: float = typer.Option(1.0, "--content-weight"),
    tv_weight: float = typer.Option(0.0, "--tv-weight"),
    optimizer: str = typer.Option("lbfgs", "--optimizer", help="lbfgs or adam."),
    steps: int = typer.Option(300, "--steps", help="Loss evaluations per resolution level."),
    lr: float = typer.Option(0.02, "--lr", help="Adam's learning rate."),
    init: str = typer.Option("content", "--init", help="content or noise."),
    multiscale: bool = typer.Option(True, "--multiscale/--single-scale", help="Coarse-to-fine for large outputs."),
    preserve_color: bool = typer.Option(
        False, "--preserve-color", help="Stylise luminance only; keep the content's colours."
    ),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device"),
    out_dir: Path = typer.Option(Path("stylized"), "--out", "-o"),
) -> None:
    """Repaint CONTENT in the style of one or more --style images (Gatys et al.)."""
    from transferlab.errors import UsageError
    from transferlab.tasks.stylize import stylize as run_stylize

    try:
        mix = [float(w) for w in style_mix.split(",")] if style_mix else []
    except ValueError:
        raise UsageError(f"--style-mix '{style_mix}' is not a list of numbers", "e.g. --style-mix 0.7,0.3") from None
    result = run_stylize(
        content, list(style), out=out_dir, device=device, size=size, network=network, weights=weights,
        smoothing=smoothing, style_weight=style_weight, content_weight=content_weight, tv_weight=tv_weight,
        optimizer=optimizer, steps=steps, lr=lr, init=init, multiscale=multiscale, preserve_color=preserve_color,
        style_mix=mix, seed=seed,
    )  # fmt: skip
    out.print(f"{result.image} ({len(result.trace.total)} evaluations, {result.trace.seconds:.1f} s)")
    out.print(f"report: {result.report}")
