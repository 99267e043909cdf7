"""``transferlab classify`` and ``transferlab evaluate``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from transferlab.cli.console import out
from transferlab.cli.data import DATA_HELP
from transferlab.errors import UsageError

STRATEGY_HELP = "linear | full | gradual | llrd | scratch (see the README)."


def classify(
    data: str = typer.Argument(None, metavar="DATA", help=DATA_HELP),
    backbone: str = typer.Option(
        "tf_efficientnet_lite0", "--backbone", "-b", help="A timm model name (`transferlab backbones`)."
    ),
    strategy: str = typer.Option("full", "--strategy", "-s", help=STRATEGY_HELP),
    compare: str = typer.Option(
        None, "--compare", help="Comma-separated strategies to train on the same split, e.g. scratch,linear,full."
    ),
    epochs: int = typer.Option(10, "--epochs", "-e"),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Peak learning rate of the head (and of scratch)."),
    body_lr_mult: float = typer.Option(0.1, "--body-lr-mult", help="full/gradual: body learning rate = lr x this."),
    layer_decay: float = typer.Option(0.7, "--layer-decay", help="llrd: per-stage learning-rate decay."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw or sgd."),
    weight_decay: float = typer.Option(0.05, "--weight-decay"),
    warmup_epochs: float = typer.Option(1.0, "--warmup-epochs"),
    label_smoothing: float = typer.Option(0.1, "--label-smoothing"),
    mixup: float = typer.Option(0.0, "--mixup", help="Mixup alpha (0 = off)."),
    cutmix: float = typer.Option(0.0, "--cutmix", help="CutMix alpha (0 = off)."),
    ema: float = typer.Option(0.0, "--ema", help="EMA decay of the weights, e.g. 0.999 (0 = off)."),
    accumulate: int = typer.Option(1, "--accumulate", help="Gradient accumulation steps."),
    patience: int = typer.Option(
        0, "--patience", help="Early stopping after N validations without improvement (0 = off)."
    ),
    eval_every: int = typer.Option(1, "--eval-every", help="Validate every N epochs (and after the last)."),
    l2sp: float = typer.Option(
        0.0, "--l2sp", help="L2-SP strength: pull the body toward its pretrained weights (0 = off)."
    ),
    img_size: int = typer.Option(None, "--img-size", help="Input size (default: the backbone's pretrained size)."),
    shots: int = typer.Option(None, "--shots", help="Keep at most N training images per class (few-shot)."),
    seed: int = typer.Option(0, "--seed"),
    val_fraction: float = typer.Option(0.2, "--val-fraction"),
    strict: bool = typer.Option(False, "--strict", help="Fail on unreadable files instead of skipping them."),
    data_root: str = typer.Option(None, "--data-root", help="Local copy of a built-in dataset."),
    weights: str = typer.Option(
        None, "--weights", help="Pretrained weights file (.safetensors/.pth) or run directory."
    ),
    accelerator: str = typer.Option("auto", "--accelerator", help="auto, cpu, gpu/cuda, mps."),
    devices: str = typer.Option("1", "--devices", help="Devices per node (e.g. 4), or 'auto'."),
    num_nodes: int = typer.Option(1, "--num-nodes"),
    precision: str = typer.Option(None, "--precision", help="Default: bf16-mixed on GPU, 32-true on CPU."),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    workers: int = typer.Option(
        2, "--workers", help="Data-loading workers (for datasets too large to hold in memory)."
    ),
    augment_with: Path = typer.Option(None, "--augment-with", help="A class-conditional GAN run: add its images."),
    synthetic_ratio: float = typer.Option(1.0, "--synthetic-ratio", help="Generated images per real training image."),
    augment_seeds: str = typer.Option("0,1,2", "--augment-seeds", help="With --augment-with: seeds to compare over."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Run directory (default: runs/classify/...)."),
    resume: Path = typer.Option(None, "--resume", help="Continue a stopped run exactly (its options are reused)."),
) -> None:
    """Fine-tune a pretrained backbone on DATA, measured against training from scratch."""
    from transferlab.tasks import classify as task

    if data is None:
        raise UsageError(
            "DATA is missing", "give a folder, archive, CSV or built-in name, e.g. `transferlab classify digits`"
        )
    options = {
        "backbone": backbone, "strategy": strategy, "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "body_lr_mult": body_lr_mult, "layer_decay": layer_decay, "optimizer": optimizer, "weight_decay": weight_decay,
        "warmup_epochs": warmup_epochs, "label_smoothing": label_smoothing, "mixup": mixup, "cutmix": cutmix,
        "ema": ema, "accumulate": accumulate, "patience": patience, "eval_every": eval_every, "l2sp": l2sp,
        "img_size": img_size, "shots": shots, "seed": seed,
        "val_fraction": val_fraction, "strict": strict, "data_root": data_root, "weights": weights,
        "accelerator": accelerator, "devices": int(devices) if devices.isdigit() else devices, "num_nodes": num_nodes,
        "precision": precision, "compile": compile_model, "workers": workers,
    }  # fmt: skip
    if augment_with is not None and (resume is not None or compare):
        raise UsageError("--augment-with runs its own with/without comparison", "leave out --compare and --resume")
    if augment_with is not None:
        try:
            seeds = [int(x) for x in augment_seeds.split(",")]
        except ValueError:
            raise UsageError(f"--augment-seeds '{augment_seeds}' is not a list of integers", "e.g. 0,1,2") from None
        options["synthetic_ratio"] = synthetic_ratio
        summary = task.augmentation_study(data, seeds, out=out_dir, augment_with=str(augment_with), **options)
        out.print(summary["verdict"])
        return
    if resume is not None:
        results = [task.fit(data, resume=resume)]
    elif compare:
        results = task.compare(data, [s.strip() for s in compare.split(",") if s.strip()], out=out_dir, **options)
    else:
        results = [task.fit(data, out=out_dir, **options)]
    show_results(results)


def show_results(results: list) -> None:
    from rich.table import Table

    if not results or not results[0].is_main_process:
        return

    table = Table(title="validation results")
    rows = [r.row() for r in results]
    for column in rows[0]:
        if column == "strategy":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*[f"{v:.1%}" if isinstance(v, float) and k != "wall s" else str(v) for k, v in row.items()])
    out.print(table)
    report = results[0].run_dir.parent / "report.html" if len(results) > 1 else results[0].run_dir / "report.html"
    out.print(f"report: {report}")


def evaluate(
    run: Path = typer.Argument(..., help="A classify run directory."),
    data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP),
    data_root: str = typer.Option(None, "--data-root"),
    device: str = typer.Option("auto", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print all metrics as JSON."),
) -> None:
    """Accuracy, top-5, per-class precision/recall/F1 and most-confused pairs of RUN on DATA."""
    from rich.table import Table

    from transferlab.tasks import classify as task

    metrics = task.evaluate(run, data, device=device, data_root=data_root)
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    out.print(
        f"{metrics['images']} images: accuracy {metrics['accuracy']:.1%}, "
        f"top-5 {metrics['top5_accuracy']:.1%}, macro F1 {metrics['macro_f1']:.3f}"
    )
    table = Table()
    for column in ("class", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for row in metrics["per_class"]:
        table.add_row(
            row["class"], f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"])
        )
    out.print(table)
    for pair in metrics["most_confused"][:5]:
        out.print(f"  {pair['true']} -> {pair['predicted']}: {pair['count']}")
