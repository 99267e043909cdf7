"""``adapt``: domain adaptation from a labelled source to an unlabelled (or few-labelled) target,
always reported beside the source-only baseline, over several seeds.

from transferlab import adapt
table = adapt.adapt(source_splits, target_splits, methods=["dann", "cdan"], seeds=[0, 1, 2])
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from transferlab import backbones
from transferlab.data import DatasetSplits, load_data
from transferlab.engine.fabric import is_main_process
from transferlab.engine.session import read_metrics
from transferlab.errors import UsageError
from transferlab.io import write_json
from transferlab.reports import plots
from transferlab.reports.comparison import Comparison, write_comparison
from transferlab.runs import CLASSIFIER, default_run_dir, read_run
from transferlab.tasks.adapt.train import METHODS, AdaptOptions, AdaptOutcome, check_classes, prepare, train_one

__all__ = ["METHODS", "AdaptOptions", "adapt", "train"]

STUDY_FILE = "study.json"


def _splits(data: Any, seed: int) -> Any:

    return data if isinstance(data, DatasetSplits) else load_data(data, seed=seed)


def adapt(
    source: Any,
    target: Any,
    *,
    methods: list[str],
    seeds: list[int] | tuple[int, ...] = (0,),
    out: str | Path | None = None,
    resume: bool = False,
    **options: Any,
) -> list[dict[str, Any]]:
    """Train each method (plus ``source-only``) with each seed, each as its own run in
    ``out/<method>-seed<seed>`` (an adapted classifier: ``predict``/``evaluate``/``export``/``serve``
    take it); return one row per method with the target accuracy (mean, std over seeds) on target
    labels never used in training. Writes ``comparison.json``/``.csv``, ``curves.png`` and ``report.html``.
    ``resume=True`` continues a stopped study in ``out``: finished runs are kept, a stopped one resumes."""
    methods = ["source-only", *[m for m in methods if m != "source-only"]]
    for name in methods:
        if name not in METHODS:
            raise UsageError(f"unknown method '{name}'", f"use one of: {', '.join(METHODS)}")
    if "joint" in methods and not options.get("target_labels"):
        raise UsageError("joint needs labelled target images", "add --target-labels K (labelled images per class)")
    base = AdaptOptions(**options)
    base.check_training()
    source_splits, target_splits = _splits(source, base.seed), _splits(target, base.seed)
    check_classes(source_splits, target_splits)
    config = backbones.create(base.backbone, pretrained=False, num_classes=0, img_size=base.img_size).data_config
    domains = prepare(source_splits, config), prepare(target_splits, config)
    folder = Path(out) if out else default_run_dir("adapt", base.backbone)
    named = [
        str(d) if isinstance(d, (str, Path)) else s.description
        for d, s in ((source, source_splits), (target, target_splits))
    ]
    study = {"source": named[0], "target": named[1],
             "methods": methods, "seeds": list(seeds), "options": asdict(base)}  # fmt: skip
    if is_main_process():
        write_json(folder / STUDY_FILE, study)
    outcomes: dict[str, list[AdaptOutcome]] = {}
    for name in methods:
        for seed in seeds:
            opts = AdaptOptions(**{**asdict(base), "method": name, "seed": seed})
            run_dir = folder / f"{name}-seed{seed}"
            if resume and (run_dir / "run.json").is_file():  # finished before the stop
                run = read_run(run_dir, model_kind=CLASSIFIER)
                done = AdaptOutcome(name, seed, run.metrics["target_acc"], run.metrics["source_acc"],
                                    run.metrics["seconds"], read_metrics(run_dir), run_dir)  # fmt: skip
            else:
                stopped = resume and (run_dir / "checkpoints").is_dir()
                done = train_one(*domains, (source_splits, target_splits), opts, run_dir, stopped)
            outcomes.setdefault(name, []).append(done)
    rows = [_row(name, runs) for name, runs in outcomes.items()]
    _write_outputs(folder, rows, outcomes, source_splits, target_splits, base)
    return rows


#: The one training entry every task has (``transferlab.TASK.train``): here, the study of methods.
train = adapt


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

    curves = {
        name: ([h["epoch"] for h in runs[0].history], [h["target_acc"] for h in runs[0].history])
        for name, runs in outcomes.items()
    }
    note = (
        f"Target accuracy on {len(target.val)} held-out target images whose labels no method saw "
        f"({opts.backbone}, {opts.epochs} x {opts.iters_per_epoch} steps, batch {opts.batch_size} per domain)."
    )
    context = {"source": source.description, "target": target.description, "options": asdict(opts)}
    table = Comparison("adapt", f"adapt: {source.description} -> {target.description}", rows, context, note=note)

    def pictures(report: Any) -> None:
        plots.metric_curves(curves, folder / "curves.png", "target accuracy (first seed)", "epoch")
        report.image(folder / "curves.png", "target accuracy per epoch")

    write_comparison(folder, table, pictures)
