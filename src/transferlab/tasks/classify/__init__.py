"""``classify``: fine-tune a pretrained backbone on the user's images, always next to the same
network trained from scratch.

    from transferlab import classify
    result = classify.train("photos/", backbone="tf_efficientnet_lite0", strategy="full", epochs=5)
    table = classify.compare("photos/", ["scratch", "linear", "full"], epochs=5)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab import backbones, robustness
from transferlab.backbones import load_run_model
from transferlab.data import DatasetSplits, load_labeled
from transferlab.devices import resolve_device
from transferlab.engine.fabric import fabric_for
from transferlab.engine.run import run
from transferlab.errors import UsageError
from transferlab.io import write_json
from transferlab.options.classify import ClassifyOptions
from transferlab.reports.comparison import Comparison, write_comparison
from transferlab.runs import CLASSIFIER, default_run_dir, folder_name, read_run
from transferlab.tasks.classify.evaluation import corruption_accuracy, run_logits, write_evaluation
from transferlab.tasks.classify.quantization import int8_check
from transferlab.tasks.classify.report import comparison_pictures
from transferlab.tasks.classify.strategies import STRATEGIES, get_strategy
from transferlab.tasks.classify.train import ClassifyRecipe, ClassifyResult, load_splits

__all__ = [
    "STRATEGIES",
    "ClassifyOptions",
    "ClassifyRecipe",
    "ClassifyResult",
    "compare",
    "compare_entries",
    "evaluate",
    "exportable",
    "fit",
    "get_strategy",
    "int8_check",
    "load_run",
    "load_splits",
    "run_logits",
    "train",
]

#: The training recipe (``registry.Task.recipe``: what ``lr-find`` sweeps and ``tune`` trains).
RECIPE = ClassifyRecipe


def _check(opts: ClassifyOptions) -> None:
    opts.check()
    ClassifyRecipe.check(opts)


def augmentation_study(data: Any, seeds: list[int], *, out: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """The same run with and without generated images, for each seed; says plainly whether they helped."""
    base = {k: v for k, v in options.items() if k not in ("augment_with", "seed")}
    first = ClassifyOptions(**{**base, "augment_with": options["augment_with"], "seed": seeds[0]})
    _check(first)
    load_splits(data, first)  # a GAN run that cannot make these classes fails here, before any training
    root = Path(out) if out else default_run_dir("classify", "augmentation")
    accuracy: dict[str, list[float]] = {"without": [], "with": []}
    for seed in seeds:
        accuracy["without"].append(fit(data, out=root / f"without-seed{seed}", seed=seed, **base).val_acc)
        accuracy["with"].append(
            fit(data, out=root / f"with-seed{seed}", seed=seed, augment_with=options["augment_with"], **base).val_acc
        )
    mean = {k: float(np.mean(v)) for k, v in accuracy.items()}
    spread = max(float(np.std(accuracy["with"])), float(np.std(accuracy["without"])))
    gain = mean["with"] - mean["without"]
    verdict = (
        f"Generated images helped: {mean['with']:.1%} vs {mean['without']:.1%} ({gain:+.1%}) over {len(seeds)} seeds."
        if gain > spread
        else f"Generated images did not help: {mean['with']:.1%} with vs {mean['without']:.1%} without "
        f"({gain:+.1%}, within the seed-to-seed spread of {spread:.1%})."
    )

    summary = {"accuracy": accuracy, "mean": mean, "gain": gain, "verdict": verdict, "seeds": seeds}
    write_json(root / "augmentation.json", summary)
    return summary


def train(
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
    ``stop_after`` ends after that many more epochs (as if interrupted); used to test resuming.
    """
    return run(ClassifyRecipe, data, out=out, resume=resume, fabric=fabric, stop_after=stop_after, **options)


#: ``train``'s first name, kept: users call ``classify.fit``.
fit = train


#: The registry's loader of this task's runs (``registry.load_run``): the classifier as a
#: :class:`~transferlab.backbones.Backbone` (model, data config, class names).
load_run = load_run_model


def exportable(run_dir: str | Path) -> tuple[Any, Any, None]:
    """The classifier to export (N x 3 x H x W normalised images -> logits) and an example batch."""
    info = read_run(run_dir, model_kind=CLASSIFIER)
    return backbones.from_run(info).model.eval(), torch.randn(2, *tuple(info.preprocessing["input_size"])), None


def compare(
    data: Any, strategies: list[str], *, out: str | Path | None = None, note: str = "", **options: Any
) -> list[ClassifyResult]:
    """Train each strategy on the same split and budget; write one table and one report."""
    for name in strategies:
        get_strategy(name)
    opts = ClassifyOptions(**{**options, "strategy": strategies[0]})
    _check(opts)
    splits = load_splits(data, opts)
    out_dir = Path(out) if out else default_run_dir("classify", f"{opts.backbone}-compare")
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
    fabric = fabric_for(ClassifyOptions(**next(iter(entries.values()))))
    results = []
    for label, options in entries.items():
        result = fit(splits, out=out_dir / folder_name(label), fabric=fabric, **options)
        result.strategy = label
        results.append(result)
    rows = [r.row() for r in results] + list(extra_rows or [])
    best = max(results, key=lambda r: r.val_acc)
    histories = {r.strategy: r.history for r in results}
    table = Comparison("classify", f"classify: compared on {splits.description}", rows, {"data": splits.summary()},
                       intro or splits.summary(), note(results) if callable(note) else note)  # fmt: skip
    write_comparison(out_dir, table, lambda report: comparison_pictures(report, out_dir, histories, best.run_dir))
    return results


def evaluate(
    run: str | Path,
    data: Any,
    *,
    device: str = "auto",
    data_root: str | None = None,
    corruptions: str | list[str] | None = None,
    severities: list[int] | tuple[int, ...] = robustness.SEVERITIES,
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of a trained run on DATA: its validation/test part if it has one, else all of it.
    ``corruptions`` (``"all"``, families or names: ``robustness.parse``) adds the accuracy under
    each corruption and severity (key ``corruptions``), ``robustness.png`` and ``report.html``."""
    asked = robustness.Request.of(corruptions, severities, seed)
    info = read_run(run, model_kind=CLASSIFIER)
    images, _ = _evaluation_images(data, info.class_names, data_root)
    dev = resolve_device(device)
    logits, labels = run_logits(info, images, dev)
    out_dir = Path(run) / "evaluations" / folder_name(Path(str(data)).name)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = write_evaluation(out_dir, images, info.class_names, logits, labels, explained_run=Path(run))
    if asked is not None:
        accuracy = corruption_accuracy(info, images, dev)
        title = f"robustness of {Path(run).name} on {Path(str(data)).name}"
        scores["corruptions"] = asked.run(accuracy, "accuracy", out_dir, title)
        write_json(out_dir / "evaluation.json", scores)
    return scores


def _evaluation_images(data: Any, run_classes: list[str], data_root: str | None):
    """DATA's images with labels renumbered to the run's classes (names must be known to it)."""
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
