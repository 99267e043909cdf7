"""``transferlab explain``: class activation maps of a run's (or an ImageNet model's) decisions."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli.console import out

METHOD_HELP = (
    "gradcam (the default), gradcam++, layercam, eigencam or scorecam (slow: a forward pass per channel); "
    "detectors: eigencam (their default)."
)


def explain(
    inputs: list[str] = typer.Argument(
        ...,
        metavar="RUN|IMAGES...",
        help="A classify, segment or detect run, then image files and/or folders (with --model: images only).",
    ),
    model: str = typer.Option(None, "--model", "-m", help="An ImageNet model by name instead of a run."),
    weights: Path = typer.Option(None, "--weights", help="Weights file for --model (.safetensors/.pth)."),
    method: str = typer.Option(None, "--method", help=METHOD_HELP),
    class_name: str = typer.Option(None, "--class", help="The class to explain (default: the predicted one)."),
    size: int = typer.Option(
        None,
        "--size",
        help="Shorter side images are run at (default: the model's, grown to a 14-cell map, to at most 3x).",
    ),
    out_dir: Path = typer.Option(Path("explained"), "--out", "-o", help="Folder for the maps."),
    batch_size: int = typer.Option(8, "--batch-size", "-b"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per image."),
) -> None:
    """Show which pixels a model's decision rests on: a map over each whole image (PNG blended over
    it, and .npy in its pixels); for segmenters also the per-pixel uncertainty, for detectors the map
    within each box found."""
    from transferlab.errors import UsageError
    from transferlab.tasks.explain import explain as run_explain

    run = None
    if model is None:
        if len(inputs) < 2:
            raise UsageError("give a run and at least one image", "e.g. transferlab explain runs/classify/x photo.jpg")
        run, inputs = inputs[0], inputs[1:]
    found = run_explain(inputs, run=run, model=model, weights=weights, method=method, class_name=class_name,
                        size=size, out=out_dir, batch_size=batch_size)  # fmt: skip
    if as_json:
        print(json.dumps([e.as_dict() for e in found], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{found[0].method} maps in {out_dir}")
    for column in ("image", "class", "score", "peak (x, y)"):
        table.add_column(column, justify="left" if column in ("image", "class") else "right")
    for e in found:
        table.add_row(Path(e.path).name, e.class_name, f"{e.score:.1%}", f"{e.peak[0]}, {e.peak[1]}")
    out.print(table)
