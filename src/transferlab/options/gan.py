"""Every option of ``transferlab gan train``, checked in one place."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import CpuDefaults, TrainOptions, option
from transferlab.errors import UsageError

D_FEATURES = ("none", "lite0")

#: Defaults that depend on the device (an option left unset takes them): the ResNet GAN is the better
#: model on a GPU, but on two CPU cores it ran about a step per second at 32 px, so a laptop user
#: waited hours; the small DCGAN runs ~10 steps/s there, and `gan train MNIST --conditional
#: --img-size 32` with these took 9.2 min with 95% class consistency (BENCHMARKS.md, "gan on CPU").
DEVICE_DEFAULTS: dict[str, dict[str, object]] = {
    "cpu": {"arch": "dcgan", "width": 32, "steps": 4000, "batch_size": 64, "eval_every": 2000, "fid_samples": 1000},
    "gpu": {"arch": "resnet", "width": 64, "steps": 5000, "batch_size": 64, "eval_every": 1000, "fid_samples": 2000},
}


@dataclass
class GanOptions(TrainOptions):
    #: DCGAN at 32 px: bf16 + channels_last 1.3x; FID (32-bit features) within the seed spread
    cpu_defaults = CpuDefaults()
    device_defaults = DEVICE_DEFAULTS

    arch: str | None = option(
        None, "dcgan (the classic) or resnet (spectral norm, hinge, EMA); default: dcgan on a CPU, resnet on a GPU."
    )
    img_size: int = option(64, "Image side: 32, 64 or 128.")
    channels: int | None = option(None, "1 or 3 (default: 1 when every image is grey).")
    conditional: bool = option(
        False, "Class-conditional (needs class folders).", flags=("--conditional/--unconditional",)
    )
    steps: int | None = option(
        None, "Training steps (one D and one G update each); default: 4000 on a CPU, 5000 on a GPU.", resumable=True
    )
    batch_size: int | None = option(None, "Images per step (default: 64).")
    z_dim: int | None = option(None, "Latent size (default: the architecture's).")
    width: int | None = option(None, "Base channel width (default: 32 on a CPU, 64 on a GPU).")
    lr_g: float = option(2e-4, "Generator learning rate.")
    lr_d: float = option(2e-4, "Discriminator learning rate.")
    beta1: float = option(0.5, "Adam's beta1 (beta2 is 0.999).")
    ema_decay: float = option(0.999, "EMA of the generator (resnet).")
    augment: str = option("color,translation,cutout", "DiffAugment ops: color,translation,cutout or none.")
    xflip: bool = option(
        False,
        "Random horizontal flips of the real images (off by default, as StyleGAN2-ADA's --mirror: "
        "they turn digits and text into mirror writing).",
    )
    r1_gamma: float = option(0.0, "R1 penalty weight gamma (0 = off).", flags=("--r1",))
    d_features: str = option("none", "lite0: discriminate on frozen ImageNet features.", choices=D_FEATURES)
    init: str | None = option(None, "Fine-tune from this GAN run (trained on a source domain).")
    freeze_d: int = option(0, "FreezeD: freeze the lowest K discriminator blocks.")
    eval_every: int | None = option(
        None, "FID/KID every N steps (0 = only at the end; default: 2000 on a CPU, 1000 on a GPU).", resumable=True
    )
    fid_samples: int | None = option(None, "Generated images per FID (default: 1000 on a CPU, 2000 on a GPU).")
    fid_features: str = option(
        "auto", "auto, inception, lite0 (offline), or run:RUN: a classify run's features (and class consistency)."
    )
    sample_every: int = option(500, "Sample grid every N steps.", resumable=True)
    checkpoint_every: int = option(500, "Checkpoint every N steps.", resumable=True)

    def __post_init__(self) -> None:
        self.init = str(self.init) if self.init is not None else None  # JSON-ready (checkpoints, run.json)

    def check(self) -> None:
        """Plain values; the recipe checks the names its registries hold (architecture, augment ops)."""
        self.check_training()
        if self.channels not in (None, 1, 3):
            raise UsageError(f"--channels {self.channels} is not 1 or 3", "use 1 (grey) or 3 (RGB)")
        if (self.steps is not None and self.steps < 1) or (self.batch_size is not None and self.batch_size < 2):
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
        for name in ("eval_every", "sample_every", "checkpoint_every", "fid_samples"):
            if (getattr(self, name) or 0) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be 0 or more", "0 turns it off")
