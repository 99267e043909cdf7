"""The options of one ``transferlab distill`` run: every classify option (the student trains as a
classify run does) plus the teacher and how the student learns from it."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import option
from transferlab.errors import UsageError
from transferlab.options.classify import ClassifyOptions

#: The distillation losses (``tasks/distill/losses.py`` holds them; named here for the CLI, torch-free).
METHODS = ("kd", "dist")


@dataclass
class DistillOptions(ClassifyOptions):
    teacher: str | None = option(None, None)  # TEACHER_RUN: the CLI's first argument
    backbone: str = option(
        "tf_efficientnet_lite0", "The student: a backbone spec (`transferlab backbones`), pretrained or NAME:random.",
        flags=("--student", "--backbone", "-b"),
    )  # fmt: skip
    method: str = option(
        "kd", "kd: Hinton's softened logits (KL); dist: DIST, the teacher's class and image rankings (Pearson).",
        choices=METHODS,
    )  # fmt: skip
    temperature: float | None = option(None, "Softmax temperature of both networks (default: kd 4, dist 1).")
    alpha: float = option(0.5, "Weight of the teacher's term; the labels' loss gets 1 - alpha.")
    unlabelled: str | None = option(
        None, "Images without labels (folder or archive) the teacher labels softly; they join the training images."
    )

    def check(self) -> None:
        super().check()
        if not self.teacher:
            raise UsageError("the teacher run is missing", "e.g. transferlab distill runs/classify/big-run DATA")
        if not 0.0 <= self.alpha <= 1.0:
            raise UsageError(f"--alpha {self.alpha} is not between 0 and 1", "e.g. --alpha 0.5")
        if self.temperature is not None and self.temperature <= 0:
            raise UsageError(f"--temperature {self.temperature} is not positive", "e.g. --temperature 4")
        if self.unlabelled and (self.mixup or self.cutmix):
            raise UsageError(
                "--mixup/--cutmix mix labels, and --unlabelled images have none",
                "leave out --mixup/--cutmix, or --unlabelled",
            )
        if self.unlabelled and self.alpha == 0:
            raise UsageError("--unlabelled images learn from the teacher alone, and --alpha 0 turns it off",
                             "use --alpha above 0, e.g. 0.5")  # fmt: skip
