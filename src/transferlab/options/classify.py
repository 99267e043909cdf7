"""Every option of a classification run: its default, help and choices, shared by CLI and API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from transferlab.engine.options import FOUND_RATE, CpuDefaults, TrainOptions, option
from transferlab.errors import UsageError


@dataclass
class ClassifyOptions(TrainOptions):
    #: Lite0, 2 CPU cores: channels_last 1.5x at 64 and 224 px; bf16 was slower at 64 px, and at 224 px it
    #: was faster but lowered the accuracy (benchmarks/cpu_speed.py, bf16_accuracy.py)
    cpu_defaults = CpuDefaults(bf16=False, why="bf16 lowered the accuracy: 60.9% against 66.6% (Lite0, 224 px)")

    backbone: str = option(
        "tf_efficientnet_lite0", "A backbone spec (`transferlab backbones`).", flags=("--backbone", "-b")
    )
    strategy: str = option(
        "full", "linear, frozen, full, gradual, llrd or scratch (see the README).", flags=("--strategy", "-s")
    )
    weights: str | None = option(None, "Pretrained weights file (.safetensors/.pth) or run directory.")
    epochs: int = option(10, "Training epochs.", flags=("--epochs", "-e"), resumable=True)
    batch_size: int = option(64, "Images per optimizer step (over all devices).")
    lr: float | str = option(1e-3, "Peak learning rate of the head (and of scratch)" + FOUND_RATE)
    #: 1.0 scored 3-12 points above 0.1 on five unlike sets, kangaroo photos near ImageNet's among them
    #: (benchmarks/body_rate.py, BENCHMARKS.md "classify: the body's learning rate")
    body_lr_mult: float = option(1.0, "full/gradual: body learning rate = lr x this (lower keeps the "
                                 "pretrained body nearer its start).")  # fmt: skip
    layer_decay: float = option(0.7, "llrd: each stage down trains at this x the one above.")
    optimizer: str = option("adamw", "The optimizer.", choices=("adamw", "sgd"))
    momentum: float = option(0.9, "SGD momentum.")
    weight_decay: float = option(0.05, "Weight decay (not on biases and norms).")
    warmup_epochs: float = option(1.0, "Linear warm-up before the cosine schedule.")
    label_smoothing: float = option(0.1, "Label smoothing.")
    mixup: float = option(0.0, "Mixup alpha (0 = off).")
    cutmix: float = option(0.0, "CutMix alpha (0 = off).")
    augmix: bool = option(False, "AugMix every training image (Hendrycks et al. 2020): for robustness to "
                          "corrupted images (`evaluate --corruptions` measures it).")  # fmt: skip
    ema: float = option(0.0, "EMA decay of the weights, e.g. 0.999 (0 = off).")
    accumulate: int = option(1, "Gradient accumulation steps.")
    eval_every: int = option(1, "Validate every N epochs (and after the last).", resumable=True)
    patience: int = option(0, "Early stopping after N validations without improvement (0 = off).")
    l2sp: float = option(0.0, "L2-SP strength: pull the body toward its pretrained weights (0 = off).")
    drop_rate: float | None = option(None, "Dropout before the head (default: timm's).")
    img_size: int | None = option(None, "Input size (default: the backbone's pretrained size).")
    crop_scale: float = option(0.35, "Smallest area share of the random resized crop.")
    val_fraction: float = option(0.2, "Share of the data held out for validation when DATA has no split.")
    shots: int | None = option(None, "Keep at most N training images per class (few-shot).")
    augment_with: str | None = option(None, "A class-conditional GAN run: add its images to the training set.")
    synthetic_ratio: float = option(1.0, "Generated images per real training image (with --augment-with).")
    strict: bool = option(False, "Fail on unreadable files instead of skipping them.")
    data_root: str | None = option(None, "Local copy of a built-in dataset.", resumable=True)
    workers: int = option(2, "Data-loading workers (for datasets too large to hold in memory).")
    resident: bool | None = option(None, "Hold the decoded images in memory (default: when they fit).")
    extra: dict[str, Any] = field(default_factory=dict, metadata={"help": None})

    def check(self) -> None:
        self.check_training()
        self.check_counts("epochs", "batch_size", "accumulate", "eval_every")
        self.check_rate()
        if self.img_size is not None and self.img_size < 16:
            raise UsageError(
                f"--img-size {self.img_size} is too small", "use 16 or more (32-96 for small images, 224 for photos)"
            )

    def parameters_may_go_unused(self) -> bool:
        from transferlab.strategies import STRATEGIES

        strategy = STRATEGIES.get(self.strategy)
        return bool(strategy and not strategy.cached_features and strategy.body_frozen(0, self.epochs, 5))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
