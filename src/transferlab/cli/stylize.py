"""``transferlab stylize``: neural style transfer by optimisation, or with a trained style network;
``transferlab stylize train``: train one (the router in ``cli.main`` sends ``stylize train`` here)."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.console import out
from transferlab.cli.options import with_options
from transferlab.options.stylize import StyleTrainOptions, StylizeOptions


@with_options(StylizeOptions)
def stylize(
    content: list[Path] = typer.Argument(..., help="The content image (with --model: images or folders)."),
    style: list[Path] = typer.Option(None, "--style", "-s", help="A style image (repeat for several)."),
    model: Path = typer.Option(None, "--model", "-m", help="A style network run (`stylize train`): fast."),
    batch_size: int = typer.Option(None, "--batch-size", help="Images per pass with --model (default: GPU 8, CPU 1)."),
    style_mix: str = typer.Option(None, "--style-mix", help="Weights of several styles, e.g. 0.7,0.3."),
    device: str = typer.Option("auto", "--device"),
    out_dir: Path = typer.Option(Path("stylized"), "--out", "-o"),
    options: dict | None = None,
) -> None:
    """Repaint CONTENT in the style of one or more --style images (Gatys et al.), or with a
    trained style network (--model RUN, from `transferlab stylize train`)."""
    from transferlab.errors import UsageError
    from transferlab.tasks.stylize import stylize as run_stylize

    if model is not None:
        if style:
            raise UsageError("--style and --model were both given", "a style network already holds its style")
        _apply(model, content, out_dir, (options or {}).get("size"), batch_size, device)
        return
    if not style:
        raise UsageError("no --style image and no --model run", "pass --style IMAGE, or --model RUN")
    if len(content) != 1:
        raise UsageError(f"{len(content)} content images were given", "optimisation takes one; --model takes many")

    try:
        mix = [float(w) for w in style_mix.split(",")] if style_mix else []
    except ValueError:
        raise UsageError(f"--style-mix '{style_mix}' is not a list of numbers", "e.g. --style-mix 0.7,0.3") from None
    result = run_stylize(content[0], list(style), out=out_dir, device=device, **{**(options or {}), "style_mix": mix})
    out.print(f"{result.image} ({len(result.trace.total)} evaluations, {result.trace.seconds:.1f} s)")
    out.print(f"report: {result.report}")


def _apply(
    model: Path, content: list[Path], out_dir: Path, size: int | None, batch_size: int | None, device: str
) -> None:
    from transferlab.tasks.stylize import apply_style

    written = apply_style(model, list(content), out=out_dir, size=size, batch_size=batch_size, device=device)
    out.print(f"{len(written)} image(s) stylised into {out_dir}")


@with_options(StyleTrainOptions)
def train(
    style: Path = typer.Argument(..., help="The style image."),
    content: str = typer.Option(..., "--content", "-c", help="Content images: a folder, archive or built-in name."),
    resume: Path = typer.Option(None, "--resume", help="Continue a stopped run (its own options)."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/stylize/STYLE-TIME)."),
    options: dict | None = None,
) -> None:
    """Train a style network for STYLE on --content images (Johnson et al.); apply it with
    `transferlab stylize IMAGES --model RUN`."""
    from transferlab.tasks.stylize import train_style

    result = train_style(style, content, out=out_dir, resume=resume, **(options or {}))
    out.print(f"style network: {result.run_dir} ({len(result.losses)} steps, {result.seconds:.0f} s)")
    out.print(f"report: {result.report}")
