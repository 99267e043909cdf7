"""``classify``: fine-tune a pretrained backbone on the user's images, always next to the same
network trained from scratch.

    from transferlab import classify
    result = classify.fit("photos/", backbone="tf_efficientnet_lite0", strategy="full", epochs=5)
    table = classify.compare("photos/", ["scratch", "linear", "full"], epochs=5)
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.data import DatasetSplits, load_data
from transferlab.errors import RunError, UsageError
from transferlab.tasks.classify.options import ClassifyOptions
from transferlab.tasks.classify.strategies import STRATEGIES, get_strategy

__all__ = ["STRATEGIES", "ClassifyOptions", "ClassifyResult", "compare", "compare_entries", "evaluate", "fit"]


@dataclass
class ClassifyResult:
    run_dir: Path
    strategy: str
    val_acc: float
    val_f1: float
    best_epoch: int
    wall_seconds: float
    trainable_params: int
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    is_main_process: bool = True  # False on the other ranks of a data-parallel run

    def row(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "val accuracy": self.val_acc,
            "macro F1": self.val_f1,
            "top-5": self.metrics.get("top5_accuracy", float("nan")),
            "wall s": round(self.wall_seconds, 1),
            "trainable params": self.trainable_params,
            "best epoch": self.best_epoch,
        }


def _check(opts: ClassifyOptions) -> None:
    from transferlab import backbones

    get_strategy(opts.strategy)
    backbones.check_name(opts.backbone)
    for name in ("epochs", "batch_size", "accumulate", "eval_every"):
        if getattr(opts, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1", f"e.g. --{name.replace('_', '-')} 10")
    if opts.lr <= 0:
        raise UsageError("--lr must be positive", "e.g. --lr 1e-3")
    if opts.img_size is not None and opts.img_size < 16:
        raise UsageError(
            f"--img-size {opts.img_size} is too small", "use 16 or more (32-96 for small images, 224 for photos)"
        )


def _load(data: Any, opts: ClassifyOptions) -> DatasetSplits:
    splits = (
        data
        if isinstance(data, DatasetSplits)
        else load_data(
            data, val_fraction=opts.val_fraction, seed=opts.seed, strict=opts.strict, data_root=opts.data_root
        )
    )
    return splits.few_shot(opts.shots, opts.seed) if opts.shots else splits


def _default_dir(opts: ClassifyOptions) -> Path:
    return Path("runs") / "classify" / f"{opts.backbone}-{opts.strategy}-{time.strftime('%Y%m%d-%H%M%S')}"


def _options_from_checkpoint(run_dir: Path) -> ClassifyOptions:
    from transferlab.engine.checkpoint import load_checkpoint
    from transferlab.tasks.classify.train import CHECKPOINT

    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise RunError(
            f"{run_dir} has no checkpoint to resume ({CHECKPOINT})", "pass the run directory of a classify run"
        )
    state = load_checkpoint(path)
    if state.get("task") != "classify":
        raise RunError(
            f"{run_dir} is a '{state.get('task')}' run, not a classify run", "resume it with its own command"
        )
    known = set(ClassifyOptions.__dataclass_fields__)
    return ClassifyOptions(**{k: v for k, v in state["options"].items() if k in known})


def _finish(run_dir: Path, splits: DatasetSplits, outcome: Any, fabric: Any) -> ClassifyResult:
    from transferlab.runs import read_run
    from transferlab.tasks.classify.evaluation import run_logits, write_evaluation
    from transferlab.tasks.classify.report import write_run_report

    metrics: dict[str, Any] = {}
    if fabric.global_rank == 0:
        run = read_run(run_dir, model_kind="timm-classifier")
        logits, labels = run_logits(run, splits.val, fabric.device)
        metrics = write_evaluation(run_dir, splits.val, splits.classes, logits, labels)
        facts = {
            "data": splits.summary(),
            "backbone": run.model["backbone"],
            "strategy": outcome.strategy,
            "weights": run.extra.get("weights_source", ""),
            "best epoch": outcome.best_epoch,
            "trainable parameters": outcome.trainable_params,
            "wall time (s)": round(outcome.wall_seconds, 1),
        }
        write_run_report(
            run_dir, f"classify: {outcome.strategy} on {splits.description}", facts, outcome.history, metrics
        )
    return ClassifyResult(
        run_dir,
        outcome.strategy,
        outcome.val_acc,
        outcome.val_f1,
        outcome.best_epoch,
        outcome.wall_seconds,
        outcome.trainable_params,
        metrics,
        outcome.history,
        fabric.global_rank == 0,
    )


def fit(
    data: Any,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    fabric: Any = None,
    stop_after: int | None = None,
    **options: Any,
) -> ClassifyResult:
    """Train one strategy on DATA (a path, a built-in name or :class:`DatasetSplits`).

    ``resume=RUN`` continues a stopped run exactly, with the options it was started with.
    ``stop_after`` ends after that many epochs (as if interrupted); used to test resuming.
    """
    from transferlab.engine.fabric import make_fabric
    from transferlab.tasks.classify.train import Trainer

    opts = _options_from_checkpoint(Path(resume)) if resume else ClassifyOptions(**options)
    _check(opts)
    splits = _load(data, opts)
    fabric = fabric or make_fabric(opts.accelerator, opts.devices, opts.num_nodes, opts.precision)
    run_dir = Path(resume) if resume else Path(out) if out else _default_dir(opts)
    outcome = Trainer(splits, opts, run_dir, fabric).fit(resume=bool(resume), stop_after=stop_after)
    return _finish(run_dir, splits, outcome, fabric)


def compare(
    data: Any, strategies: list[str], *, out: str | Path | None = None, note: str = "", **options: Any
) -> list[ClassifyResult]:
    """Train each strategy on the same split and budget; write one table and one report."""
    for name in strategies:
        get_strategy(name)
    opts = ClassifyOptions(**{**options, "strategy": strategies[0]})
    _check(opts)
    splits = _load(data, opts)
    out_dir = (
        Path(out) if out else Path("runs") / "classify" / f"{opts.backbone}-compare-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    entries = {name: {**options, "strategy": name, "shots": None} for name in strategies}
    budget = f"{opts.epochs} epochs, batch {opts.batch_size}, seed {opts.seed}"
    intro = f"{splits.summary()}. Backbone {opts.backbone}, {budget}."
    return compare_entries(splits, entries, out_dir, intro=intro, note=note)


def compare_entries(
    splits: DatasetSplits,
    entries: dict[str, dict[str, Any]],
    out_dir: Path,
    *,
    intro: str = "",
    note: str | Callable[[list[ClassifyResult]], str] = "",
    extra_rows: list[dict] | None = None,
) -> list[ClassifyResult]:
    """Train each labelled configuration on the same ``splits``; write the table and the report."""
    from transferlab.engine.fabric import make_fabric
    from transferlab.io import write_json
    from transferlab.tasks.classify.report import write_comparison_report

    first = ClassifyOptions(**next(iter(entries.values())))
    fabric = make_fabric(first.accelerator, first.devices, first.num_nodes, first.precision)
    results = []
    for label, options in entries.items():
        result = fit(splits, out=out_dir / _dir_name(label), fabric=fabric, **options)
        result.strategy = label
        results.append(result)
    if fabric.global_rank == 0:
        rows = [r.row() for r in results] + list(extra_rows or [])
        write_json(out_dir / "comparison.json", rows)
        with open(out_dir / "comparison.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        best = max(results, key=lambda r: r.val_acc)
        note = note(results) if callable(note) else note
        histories = {r.strategy: r.history for r in results}
        write_comparison_report(
            out_dir,
            f"classify: compared on {splits.description}",
            intro or splits.summary(),
            rows,
            histories,
            best.run_dir,
            note,
        )
    return results


def _dir_name(label: str) -> str:
    """A shell-friendly folder name for a table label ("printed->full" -> "printed-full")."""
    return re.sub(r"[^A-Za-z0-9_.]+", "-", label).strip("-") or "run"


def evaluate(run: str | Path, data: Any, *, device: str = "auto", data_root: str | None = None) -> dict[str, Any]:
    """Metrics of a trained run on DATA: its validation/test part if it has one, else all of it."""
    from transferlab.devices import resolve_device
    from transferlab.runs import read_run
    from transferlab.tasks.classify.evaluation import run_logits, write_evaluation

    info = read_run(run, model_kind="timm-classifier")
    images, _ = _evaluation_images(data, info.class_names, data_root)
    logits, labels = run_logits(info, images, resolve_device(device))
    out_dir = Path(run) / "evaluations" / _dir_name(Path(str(data)).name)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_evaluation(out_dir, images, info.class_names, logits, labels)


def _evaluation_images(data: Any, run_classes: list[str], data_root: str | None):
    """DATA's images with labels renumbered to the run's classes (names must be known to it)."""
    from transferlab.data import load_labeled

    images, classes = load_labeled(data, data_root=data_root)
    unknown = [c for c in classes if c not in run_classes]
    if unknown:
        raise UsageError(
            f"DATA has class(es) the model does not know: {', '.join(unknown[:5])}",
            f"the model's classes are: {', '.join(run_classes[:10])}{' ...' if len(run_classes) > 10 else ''}",
        )
    renumbered = images.subset(range(len(images)))
    to_run = np.array([run_classes.index(c) for c in classes], dtype=np.int64)
    renumbered.labels = to_run[images.labels]
    return renumbered, run_classes
