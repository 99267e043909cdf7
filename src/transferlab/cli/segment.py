"""``transferlab segment train | evaluate | apply``: semantic segmentation on pretrained encoders."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli import robustness as robust
from transferlab.cli.console import out, print_rows, train_or_compare
from transferlab.cli.options import RESUME, with_options
from transferlab.options.segment import SegmentOptions

DATA_HELP = ("A folder (or archive) with images/ + masks/ (optionally under train/ val/ test/), or the Pascal "
             "VOC layout; or leave it out and pass --images/--masks.")  # fmt: skip


@with_options(SegmentOptions)
def train(
    data: str = typer.Argument(None, metavar="[DATA]", help=DATA_HELP),
    compare: str = typer.Option(None, "--compare", help="Strategies to compare, e.g. scratch,frozen,full."),
    resume: Path = RESUME,
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/segment/DECODER-STRATEGY-TIME)."),
    options: dict | None = None,
) -> None:
    """Train a segmentation network (U-Net or FPN) on a pretrained encoder; --compare strategies."""
    from transferlab.tasks import segment
    from transferlab.tasks.segment.report import weak_line

    def summary(result: segment.SegmentResult) -> list[str]:
        s = result.scores
        return [f"{result.run_dir}: held-out mIoU {s['miou']:.3f}, pixel accuracy {s['pixel_accuracy']:.3f}, "
                f"mean Dice {s['mean_dice']:.3f} ({result.seconds:.0f} s)", weak_line(s)]  # fmt: skip

    train_or_compare(segment, data, compare, resume, out_dir, options or {}, summary)


def evaluate(
    run: Path = typer.Argument(..., help="A segment run."),
    data: str = typer.Argument(None, metavar="[DATA]", help=DATA_HELP),
    images: str = typer.Option(None, "--images", help="A folder of images (with --masks), instead of DATA."),
    masks: str = typer.Option(None, "--masks", help="A folder of masks paired with --images by file name stem."),
    classes: str = typer.Option(
        None, "--classes", help="The run's classes as a file of 'name,r,g,b' lines (for colour masks)."
    ),
    ignore_index: int = typer.Option(None, "--ignore-index", help="The data's void value (default: the run's)."),
    predict_size: int = typer.Option(None, "--predict-size", help="Predict at this shorter side (default: the run's)."),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    corruptions: str = robust.CORRUPTIONS,
    severities: str = robust.SEVERITIES,
    seed: int = robust.SEED,
) -> None:
    """mIoU, pixel and class accuracy and Dice of RUN on DATA (its val/test part, else all of it)."""
    from transferlab.tasks import segment
    from transferlab.tasks.segment.report import weak_line

    scores = segment.evaluate(run, data, device=device, images=images, masks=masks, classes=classes,
                              ignore_index=ignore_index, predict_size=predict_size, corruptions=corruptions,
                              severities=robust.parse_severities(severities), seed=seed)  # fmt: skip
    if as_json:
        print(json.dumps(scores, indent=2))
        return
    out.print(f"{scores['images']} images: mIoU {scores['miou']:.3f}, pixel accuracy {scores['pixel_accuracy']:.3f}, "
              f"class accuracy {scores['class_accuracy']:.3f}, mean Dice {scores['mean_dice']:.3f}")  # fmt: skip
    print_rows([{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()} for row in scores["per_class"]],
               "per class")  # fmt: skip
    out.print(weak_line(scores))
    if "corruptions" in scores:
        robust.show_robustness(scores["corruptions"])


def apply(
    run: Path = typer.Argument(..., help="A segment run."),
    images: list[Path] = typer.Argument(..., help="Images or folders (any size)."),
    out_dir: Path = typer.Option(Path("segmented"), "--out", "-o", help="Folder for the masks and overlays."),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Segment IMAGES: a class-index PNG, a colour PNG and an overlay for each."""
    from transferlab.tasks import segment

    written = segment.apply(run, list(images), out=out_dir, device=device)
    out.print(f"{len(written)} file(s) written to {out_dir}")
