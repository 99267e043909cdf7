"""Every option of ``transferlab gan train``, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import TrainOptions
from transferlab.errors import UsageError
from transferlab.tasks.gan.augment import parse_policy
from transferlab.tasks.gan.networks import ARCHITECTURES, RESOLUTIONS

D_FEATURES = ("none", "lite0")


@dataclass
class GanOptions(TrainOptions):
    arch: str = "resnet"  # dcgan | resnet (see networks.ARCHITECTURES)
    img_size: int = 64
    channels: int | None = None  # None: 1 when every image is grey, else 3
    conditional: bool = False  # class-conditional (needs labelled DATA)
    steps: int = 5000
    batch_size: int = 64
    z_dim: int | None = None  # None: the architecture's default
    width: int | None = None  # None: the architecture's default
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5  # Adam's beta1 (DCGAN's 0.5); beta2 is 0.999
    ema_decay: float = 0.999
    augment: str = "color,translation,cutout"  # DiffAugment policy; "none" turns it off
    xflip: bool = True
    r1_gamma: float = 0.0
    d_features: str = "none"  # lite0: projected discriminator on frozen ImageNet features
    init: str | None = None  # a GAN run to fine-tune from
    freeze_d: int = 0  # FreezeD: lowest K discriminator blocks frozen
    eval_every: int = 1000
    fid_samples: int = 2000
    fid_features: str = "auto"
    sample_every: int = 500
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        self.init = str(self.init) if self.init is not None else None  # JSON-ready (checkpoints, run.json)

    def check(self) -> None:
        self.check_training()
        if self.arch not in ARCHITECTURES:
            raise UsageError(f"unknown --arch '{self.arch}'", f"use one of: {', '.join(ARCHITECTURES)}")
        if self.img_size not in RESOLUTIONS:
            raise UsageError(f"--img-size {self.img_size} is not supported", f"use one of {RESOLUTIONS}")
        if self.channels not in (None, 1, 3):
            raise UsageError(f"--channels {self.channels} is not 1 or 3", "use 1 (grey) or 3 (RGB)")
        if self.steps < 1 or self.batch_size < 2:
            raise UsageError("--steps must be at least 1 and --batch-size at least 2", "e.g. --steps 5000")
        if self.d_features not in D_FEATURES:
            raise UsageError(f"unknown --d-features '{self.d_features}'", f"use one of: {', '.join(D_FEATURES)}")
        if self.freeze_d < 0:
            raise UsageError("--freeze-d must be 0 or more", "e.g. --freeze-d 2")
        if self.freeze_d and self.d_features != "none":
            raise UsageError(
                "--freeze-d with --d-features: the feature discriminator's body is already frozen",
                "use one of them",
            )
        if self.r1_gamma < 0 or not 0 <= self.ema_decay < 1:
            raise UsageError("--r1 must be >= 0 and --ema-decay in [0, 1)", "e.g. --r1 1 --ema-decay 0.999")
        parse_policy(self.augment)
        for name in ("eval_every", "sample_every", "checkpoint_every", "fid_samples"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be 0 or more", "0 turns it off")
