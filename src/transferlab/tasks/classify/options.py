"""Every option of a classification run, with the defaults the CLI and the API share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from transferlab.engine.options import TrainOptions


@dataclass
class ClassifyOptions(TrainOptions):
    backbone: str = "tf_efficientnet_lite0"
    strategy: str = "full"
    weights: str | None = None  # explicit pretrained weights file (or a run directory)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # the head's (and scratch's) peak learning rate
    body_lr_mult: float = 0.1  # full / gradual: body learning rate = lr x this
    layer_decay: float = 0.7  # llrd: each stage down trains at this x the one above
    optimizer: str = "adamw"  # adamw | sgd
    momentum: float = 0.9
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    mixup: float = 0.0  # mixup alpha (0 = off)
    cutmix: float = 0.0  # cutmix alpha (0 = off)
    ema: float = 0.0  # EMA decay of the weights (0 = off), e.g. 0.999
    accumulate: int = 1  # gradient accumulation steps
    eval_every: int = 1  # validate every N epochs (and after the last)
    patience: int = 0  # early stopping after this many validations without improvement (0 = off)
    l2sp: float = 0.0  # L2-SP alpha (0 = off)
    drop_rate: float | None = None  # dropout before the head (None = timm's default)
    img_size: int | None = None  # None = the backbone's pretrained size
    crop_scale: float = 0.35  # smallest area share of the random resized crop
    val_fraction: float = 0.2
    shots: int | None = None  # keep at most this many training images per class (few-shot)
    augment_with: str | None = None  # a class-conditional GAN run whose images join the training set
    synthetic_ratio: float = 1.0  # generated images per real training image (with augment_with)
    strict: bool = False
    data_root: str | None = None
    workers: int = 2
    resident: bool | None = None  # None = decide by dataset size
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
