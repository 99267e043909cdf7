"""Distillation: classify's recipe with a teacher in the loss.

The student trains exactly as a classify run does (strategy, augmentation, mixup, EMA, devices,
checkpoints, the best epoch kept) and is saved as an ordinary classifier run. Per training batch
the frozen teacher sees the same augmented images the student sees (Beyer et al. 2022, "a good
teacher is patient and consistent": the same view, not a cached prediction of another one), so
its logits are computed on the fly under the engine's inference context, never cached:

    loss = (1 - alpha) * CE(student, labels)  [labelled images only]  +  alpha * KD(student, teacher)

Images from ``--unlabelled`` join the training images with the label -1: only the teacher
teaches them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab import backbones
from transferlab.data import DatasetSplits, load_images
from transferlab.data.collections import ConcatImages
from transferlab.engine.session import fingerprint
from transferlab.errors import DataError, UsageError
from transferlab.io import write_json
from transferlab.options.distill import DistillOptions
from transferlab.runs import CLASSIFIER, read_run
from transferlab.speed import torch_latency_ms
from transferlab.tasks.classify import ClassifyRecipe, ClassifyResult, get_strategy, load_splits, run_logits
from transferlab.tasks.distill.losses import METHODS

TASK = "distill"
DISTILLATION_FILE = "distillation.json"


class TeacherInput(nn.Module):
    """The student's normalised batch as the teacher's own preprocessing gives it: back to [0, 1]
    with the student's mean and std, resized to the teacher's input size where it differs, then
    normalised with the teacher's mean and std. The identity when both preprocess alike."""

    def __init__(self, student: dict[str, Any], teacher: dict[str, Any]) -> None:
        super().__init__()

        def stats(config: dict[str, Any], key: str) -> torch.Tensor:
            return torch.tensor(config[key], dtype=torch.float32).view(1, -1, 1, 1)

        self.register_buffer("student_mean", stats(student, "mean"))
        self.register_buffer("student_std", stats(student, "std"))
        self.register_buffer("teacher_mean", stats(teacher, "mean"))
        self.register_buffer("teacher_std", stats(teacher, "std"))
        self.size = tuple(teacher["input_size"][1:])
        self.same_stats = student["mean"] == teacher["mean"] and student["std"] == teacher["std"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_stats and tuple(x.shape[-2:]) == self.size:
            return x
        pixels = x.float() * self.student_std + self.student_mean
        if tuple(x.shape[-2:]) != self.size:
            pixels = F.interpolate(pixels, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        return (pixels - self.teacher_mean) / self.teacher_std


def with_unlabelled(splits: DatasetSplits, source: str) -> DatasetSplits:
    """``splits`` with every image of ``source`` added to the training part under the label -1."""
    images, _, _ = load_images(source)
    unlabelled = images.subset(np.arange(len(images)))
    unlabelled.labels = np.full(len(images), -1, dtype=np.int64)
    return DatasetSplits(
        ConcatImages(splits.train, unlabelled), splits.val, splits.classes,
        f"{splits.description} + {len(images)} unlabelled from {source}", splits.val_origin, splits.skipped,
    )  # fmt: skip


def teacher_order(teacher_classes: list[str], classes: list[str], teacher: str) -> torch.Tensor | None:
    """Indices putting the teacher's logits in DATA's class order (None: already in it); refuses a
    teacher that does not know DATA's classes or knows others."""
    if teacher_classes == classes:
        return None
    if sorted(teacher_classes) != sorted(classes):
        missing, extra = sorted(set(classes) - set(teacher_classes)), sorted(set(teacher_classes) - set(classes))
        said = "; ".join(
            part for part in (f"unknown to it: {', '.join(missing[:5])}" if missing else "",
                              f"not in DATA: {', '.join(extra[:5])}" if extra else "") if part
        )  # fmt: skip
        raise DataError(
            f"the teacher {teacher} was trained on other classes than DATA's ({said})",
            "distill on DATA with the teacher's classes, or train a teacher on DATA first (transferlab classify DATA)",
        )
    return torch.tensor([teacher_classes.index(c) for c in classes])


class DistillRecipe(ClassifyRecipe):
    """A classify run whose loss adds the frozen teacher's term (``tasks/distill/losses.py``)."""

    task, options = TASK, DistillOptions
    title_format, name_format = "distill {method} into {backbone}", "{backbone}-{method}"
    command = "transferlab distill TEACHER_RUN {data}"

    opts: DistillOptions

    def __init__(self, data: Any, opts: DistillOptions, fabric: Any, run_dir: Path) -> None:
        self.teacher_run = read_run(opts.teacher, model_kind=CLASSIFIER)
        super().__init__(data, opts, fabric, run_dir)
        teacher = backbones.from_run(self.teacher_run)
        student_channels = self.data_config["input_size"][0]
        if teacher.data_config["input_size"][0] != student_channels:
            raise UsageError(
                f"the teacher takes {teacher.data_config['input_size'][0]}-channel images, the student "
                f"{opts.backbone} {student_channels}-channel ones", "choose a student that takes the teacher's images"
            )  # fmt: skip
        self.teacher = teacher.model.to(fabric.device).eval().requires_grad_(False)
        self.teacher_input = TeacherInput(self.data_config, teacher.data_config).to(fabric.device)
        order = teacher_order(self.teacher_run.class_names, self.splits.classes, opts.teacher)
        self.order = None if order is None else order.to(fabric.device)
        self.distiller = METHODS[opts.method](opts.temperature).to(fabric.device)

    @classmethod
    def check(cls, opts: DistillOptions) -> None:
        """The student and strategy as classify checks them; the teacher is a classifier run."""
        super().check(opts)
        if get_strategy(opts.strategy).cached_features:
            raise UsageError(
                f"--strategy {opts.strategy} trains a head on features computed once; the teacher needs the images",
                "use --strategy frozen (the same head on a frozen body) or full",
            )
        read_run(str(opts.teacher), model_kind=CLASSIFIER)

    def read_data(self, data: Any, opts: DistillOptions) -> DatasetSplits:  # type: ignore[override]
        splits = load_splits(data, opts)
        return with_unlabelled(splits, opts.unlabelled) if opts.unlabelled else splits

    def fingerprint(self) -> str:
        """The data's, and the teacher's weights: a resume with another teacher is refused."""
        weights = self.teacher_run.weights_path
        return fingerprint(super().fingerprint(), str(weights.resolve()), weights.stat().st_size)

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's logits for the student's batch, in DATA's class order."""
        with self.performance.inference(self.teacher):
            logits = self.teacher(self.teacher_input(x))
        logits = logits.float().clone()  # out of inference mode: autograd may keep it for the backward pass
        return logits if self.order is None else logits[:, self.order]

    def training_loss(self, x: torch.Tensor, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        alpha = self.opts.alpha
        loss = alpha * self.distiller(logits, self.teacher_logits(x)) if alpha else logits.new_zeros(())
        known = target >= 0 if target.ndim == 1 else None  # mixup's soft targets are all labelled
        if alpha < 1 and (known is None or known.all()):
            loss = loss + (1 - alpha) * self.label_loss(logits, target)
        elif alpha < 1 and known.any():
            loss = loss + (1 - alpha) * self.label_loss(logits[known], target[known])
        return loss + self.penalty()

    def finish(self, seconds: float, write: bool, name: str = "") -> ClassifyResult:
        """classify's run, report and result; the teacher-student table also in ``distillation.json``
        and the result's ``metrics["distillation"]``."""
        self.comparison: list[dict[str, Any]] = []
        result = super().finish(seconds, write, name)
        if write:
            write_json(self.run_dir / DISTILLATION_FILE, {"teacher": str(self.opts.teacher), "rows": self.comparison})
            result.metrics["distillation"] = self.comparison
        return result

    def report_tables(self, run: Any, metrics: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        """Teacher and student side by side on the same held-out images: accuracy, size, latency."""
        teacher_logits, labels = run_logits(self.teacher_run, self.splits.val, self.fabric.device)
        if self.order is not None:
            teacher_logits = teacher_logits[:, self.order.cpu()]
        teacher_acc = float((teacher_logits.argmax(1).cpu() == labels.cpu()).float().mean())
        rows = [
            _network_row("teacher", self.teacher_run, teacher_acc),
            _network_row(f"student ({self.opts.method})", run, float(metrics["accuracy"])),
        ]
        rows[1]["speed-up"] = round(rows[0]["latency ms (batch 1, CPU)"] / rows[1]["latency ms (batch 1, CPU)"], 2)
        self.comparison = rows
        return {"Teacher and student": rows}


def _network_row(who: str, run: Any, accuracy: float) -> dict[str, Any]:
    """One network's accuracy, parameters, weights file and CPU latency at batch 1 at its input size."""
    model = backbones.from_run(run).model.cpu()
    example = torch.randn(1, *run.preprocessing["input_size"])
    return {
        "network": who,
        "backbone": run.model["backbone"],
        "accuracy": round(accuracy, 4),
        "parameters": sum(p.numel() for p in model.parameters()),
        "MB": round(run.weights_path.stat().st_size / 2**20, 2),
        "input": "x".join(map(str, run.preprocessing["input_size"][1:])),
        "latency ms (batch 1, CPU)": round(torch_latency_ms(model, example), 2),
    }
