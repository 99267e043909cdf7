"""``adapt``: domain adaptation from a labelled source to an unlabelled (or few-labelled) target,
always reported beside the source-only baseline, over several seeds.

from transferlab import adapt
table = adapt.adapt(source_splits, target_splits, methods=["dann", "cdan"], seeds=[0, 1, 2])
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.errors import UsageError
from transferlab.tasks.adapt.train import METHODS, Adapter, AdaptOptions, AdaptOutcome, check_classes, prepare

__all__ = ["METHODS", "AdaptOptions", "adapt"]


def _splits(data: Any, seed: int) -> Any:
    from transferlab.data import DatasetSplits, load_data

    return data if isinstance(data, DatasetSplits) else load_data(data, seed=seed)


def adapt(
    source: Any,
    target: Any,
    *,
    methods: list[str],
    seeds: list[int] | tuple[int, ...] = (0,),
    out: str | Path | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Train each method (plus ``source-only``) with each seed; return one row per method with the
    target accuracy (mean, std over seeds) on target labels never used in training. Writes
    ``adapt.json``, ``metrics.csv``, ``curves.png`` and ``report.html`` into ``out``."""
    from transferlab.devices import resolve_device

    methods = ["source-only", *[m for m in methods if m != "source-only"]]
    for name in methods:
        if name not in METHODS:
            raise UsageError(f"unknown method '{name}'", f"use one of: {', '.join(METHODS)}")
    if "joint" in methods and not options.get("target_labels"):
        raise UsageError("joint needs labelled target images", "add --target-labels K (labelled images per class)")
    base = AdaptOptions(**options)
    source_splits, target_splits = _splits(source, base.seed), _splits(target, base.seed)
    check_classes(source_splits, target_splits)
    device = resolve_device(base.device)
    size = base.img_size or (28 if base.backbone == "lenet" else 224)
    channels = 1 if base.backbone == "lenet" else 3
    domains = prepare(source_splits, size, channels, device), prepare(target_splits, size, channels, device)
    outcomes: dict[str, list[AdaptOutcome]] = {}
    for name in methods:
        for seed in seeds:
            opts = AdaptOptions(**{**asdict(base), "method": name, "seed": seed})
            outcomes.setdefault(name, []).append(Adapter(*domains, len(source_splits.classes), opts).fit())
    rows = [_row(name, runs) for name, runs in outcomes.items()]
    folder = Path(out) if out else Path("runs") / "adapt" / time.strftime("%Y%m%d-%H%M%S")
    _write_outputs(folder, rows, outcomes, source_splits, target_splits, base)
    return rows


def _row(name: str, runs: list[AdaptOutcome]) -> dict[str, Any]:
    acc = np.array([r.target_acc for r in runs]) * 100
    return {
        "method": name,
        "target acc %": round(float(acc.mean()), 2),
        "std": round(float(acc.std(ddof=1)) if len(acc) > 1 else 0.0, 2),
        "seeds": len(runs),
        "source val acc %": round(float(np.mean([r.source_acc for r in runs]) * 100), 2),
        "seconds per run": round(float(np.mean([r.seconds for r in runs])), 1),
    }


def _write_outputs(
    folder: Path, rows: list[dict[str, Any]], outcomes: dict[str, list[AdaptOutcome]], source: Any, target: Any,
    opts: AdaptOptions,
) -> None:  # fmt: skip
    import csv

    from transferlab.io import atomic_path, write_json
    from transferlab.reports import plots
    from transferlab.reports.html import HtmlReport

    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "adapt.json", {"source": source.description, "target": target.description,
                                       "options": asdict(opts), "rows": rows})  # fmt: skip
    with atomic_path(folder / "metrics.csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "seed", "epoch", "cls_loss", "align_loss", "target_acc"])
        for name, runs in outcomes.items():
            for run in runs:
                for h in run.history:
                    writer.writerow([name, run.seed, h["epoch"], h["cls_loss"], h["align_loss"], h["target_acc"]])
    curves = {
        name: ([h["epoch"] for h in runs[0].history], [h["target_acc"] for h in runs[0].history])
        for name, runs in outcomes.items()
    }
    plots.metric_curves(curves, folder / "curves.png", "target accuracy (first seed)", "epoch")
    report = HtmlReport(f"adapt: {source.description} -> {target.description}")
    report.table(rows).text(
        f"Target accuracy on {len(target.val)} held-out target images whose labels no method saw "
        f"({opts.backbone}, {opts.epochs} x {opts.iters_per_epoch} steps, batch {opts.batch_size} per domain).",
        note=True,
    )
    report.image(folder / "curves.png", "target accuracy per epoch").save(folder / "report.html")
