"""``transferlab detect train | evaluate | apply``: object detection on pretrained backbones."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli import robustness as robust
from transferlab.cli.console import out, print_rows, train_or_compare
from transferlab.cli.options import RESUME, with_options
from transferlab.options.detect import DetectOptions

DATA_HELP = ("A folder (or archive) with images/ + annotations/ (VOC XML), labels/ (YOLO) or a COCO JSON, optionally "
             "under train/ val/; or the VOC layout; or leave it out and pass --images/--annotations.")  # fmt: skip


@with_options(DetectOptions)
def train(
    data: str = typer.Argument(None, metavar="[DATA]", help=DATA_HELP),
    compare: str = typer.Option(None, "--compare", help="Strategies to compare, e.g. scratch,frozen,full."),
    resume: Path = RESUME,
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run folder (default: runs/detect/DETECTOR-STRATEGY-TIME)."),
    options: dict | None = None,
) -> None:
    """Train a detector (FCOS, RetinaNet, Faster R-CNN) on a pretrained backbone; --compare strategies."""
    from transferlab.tasks import detect

    def summary(result: detect.DetectResult) -> list[str]:
        s = result.scores
        return [f"{result.run_dir}: held-out mAP@[.5:.95] {s['map']:.3f}, mAP@.5 {s['map_50']:.3f}, "
                f"recall {s['recall']:.3f} ({result.seconds:.0f} s)"]  # fmt: skip

    train_or_compare(detect, data, compare, resume, out_dir, options or {}, summary)


def evaluate(
    run: Path = typer.Argument(..., help="A detect run."),
    data: str = typer.Argument(None, metavar="[DATA]", help=DATA_HELP),
    images: str = typer.Option(None, "--images", help="A folder of images (with --annotations), instead of DATA."),
    annotations: str = typer.Option(
        None, "--annotations", help="VOC XML or YOLO txt files paired with --images by name, or a COCO JSON."
    ),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
    corruptions: str = robust.CORRUPTIONS,
    severities: str = robust.SEVERITIES,
    seed: int = robust.SEED,
) -> None:
    """COCO mAP@[.5:.95], mAP@.5, mAP@.75, recall and AP per class of RUN on DATA (its val part, else all of it)."""
    from transferlab.tasks import detect

    scores = detect.evaluate(
        run,
        data,
        device=device,
        images=images,
        annotations=annotations,
        corruptions=corruptions,
        severities=robust.parse_severities(severities),
        seed=seed,
    )
    if as_json:
        print(json.dumps(scores, indent=2))
        return
    out.print(f"{scores['images']} images: mAP@[.5:.95] {scores['map']:.3f}, mAP@.5 {scores['map_50']:.3f}, "
              f"mAP@.75 {scores['map_75']:.3f}, recall {scores['recall']:.3f}")  # fmt: skip
    print_rows([{**row, "ap": round(row["ap"], 3)} for row in scores["per_class"]], "per class")
    if "corruptions" in scores:
        robust.show_robustness(scores["corruptions"])


def apply(
    run: Path = typer.Argument(..., help="A detect run."),
    images: list[Path] = typer.Argument(..., help="Images or folders (any size)."),
    out_dir: Path = typer.Option(Path("detected"), "--out", "-o", help="Folder for the drawn images and the JSON."),
    score_threshold: float = typer.Option(0.3, "--score-threshold", help="Keep detections scoring at least this."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Detect objects in IMAGES: each drawn with its boxes, and detections.json in COCO's results format."""
    from transferlab.tasks import detect

    written = detect.apply(run, list(images), out=out_dir, device=device, score_threshold=score_threshold,
                           batch_size=batch_size)  # fmt: skip
    out.print(f"{len(written) - 1} image(s) and detections.json written to {out_dir}")
