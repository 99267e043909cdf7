"""``distill``: a small fast student from a large fine-tuned teacher (knowledge distillation).

    from transferlab import distill
    result = distill.train("runs/classify/lite2-run", "photos/", student="tf_efficientnet_lite0", epochs=10)
    result.metrics["distillation"]   # teacher and student: accuracy, parameters, MB, CPU latency

The result is an ordinary classifier run: ``evaluate``, ``predict``, ``explain``, ``export`` and
``serve`` take it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferlab.engine.run import run
from transferlab.options.distill import DistillOptions
from transferlab.tasks.classify import ClassifyResult
from transferlab.tasks.distill.losses import DIST, METHODS, HintonKD
from transferlab.tasks.distill.train import DISTILLATION_FILE, DistillRecipe

__all__ = ["DIST", "DISTILLATION_FILE", "METHODS", "DistillOptions", "HintonKD", "train"]

#: The training recipe (``registry.Task.recipe``: what ``lr-find`` sweeps and ``tune`` trains).
RECIPE = DistillRecipe


def train(
    teacher: str | Path | None,
    data: Any,
    *,
    student: str | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    fabric: Any = None,
    stop_after: int | None = None,
    **options: Any,
) -> ClassifyResult:
    """Distil the classifier run ``teacher`` into ``student`` (a backbone spec; default Lite0) on
    DATA, with every classify option besides ``method``, ``temperature``, ``alpha`` and
    ``unlabelled``. ``resume=RUN`` continues a stopped run exactly (its teacher and options)."""
    if student is not None:
        options["backbone"] = student
    teacher_option = {"teacher": str(teacher)} if teacher is not None else {}
    return run(DistillRecipe, data, out=out, resume=resume, fabric=fabric, stop_after=stop_after,
               **teacher_option, **options)  # fmt: skip
