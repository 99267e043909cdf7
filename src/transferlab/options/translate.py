"""The options of ``transferlab translate train`` (image-to-image translation on a U-Net)."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import FOUND_RATE, CpuDefaults, TrainOptions, option
from transferlab.errors import UsageError
from transferlab.strategies import TRANSLATE, names_for

TASKS = ("colorize", "superres", "inpaint", "denoise", "edges", "paired")


@dataclass
class TranslateOptions(TrainOptions):
    cpu_defaults = CpuDefaults(bf16=False, why="bf16 did not pay at 64 px: 1.10x, 32-bit channels_last 1.14x")

    task: str = option("colorize", "What to translate (self-supervised from any photos, or paired A/B).", choices=TASKS)
    backbone: str = option("tf_efficientnet_lite0", "The U-Net's encoder: any backbone spec (`transferlab backbones`).")
    generator: str = option("unet", "Generator design (registry in tasks/translate/networks.py).")
    img_size: int = option(64, "Training crops are resized to this square side (a multiple of the encoder's stride).")
    scale: int = option(4, "superres: the factor the inputs are downscaled by (2 or 4).")
    noise: float = option(0.1, "denoise: std of the Gaussian noise on inputs in [0, 1].")
    steps: int = option(1000, "Training steps.", resumable=True)
    batch_size: int = option(16, "Images per step.")
    lr: float | str = option(
        2e-4, "Adam's learning rate (the pretrained encoder trains at the --strategy's share of it)" + FOUND_RATE
    )
    strategy: str = option(
        "full", "frozen, full (encoder at --encoder-lr-mult), gradual (decoder alone for the first third of the "
        "steps), scratch (the encoder from random weights, at --lr).", choices=names_for(TRANSLATE),
    )  # fmt: skip
    encoder_lr_mult: float = option(0.1, "Learning rate of the encoder relative to the decoder (full, gradual).")
    decoder_width: int = option(32, "Channels of the decoder's finest level (doubling per level down).")
    l1_weight: float = option(1.0, "Weight of the L1 loss.")
    perceptual_weight: float = option(0.1, "Weight of the Lite0 perceptual distance (0 = off).")
    adversarial: bool = option(False, "Add pix2pix's PatchGAN loss (a discriminator trained alongside).")
    adversarial_weight: float = option(0.01, "Weight of the adversarial loss.")
    d_init: str | None = option(None, "With --adversarial: start the discriminator from this GAN run's.")
    d_features: str = option(
        "none", "With --adversarial: lite0 judges on frozen ImageNet features.", choices=("none", "lite0")
    )
    val_fraction: float = option(0.1, "Share of the images held out for evaluation.")
    eval_every: int = option(250, "Held-out PSNR/SSIM every N steps (and at the end).", resumable=True)
    checkpoint_every: int = option(250, "Checkpoint every N steps.", resumable=True)

    def check(self) -> None:
        self.check_training()
        self.check_rate()
        if self.scale not in (2, 4):
            raise UsageError(f"--scale {self.scale} is not 2 or 4", "use --scale 2 or --scale 4")
        if self.steps < 1 or self.batch_size < 2 or self.img_size < 32:
            raise UsageError("--steps >= 1, --batch-size >= 2 and --img-size >= 32 are needed", "e.g. --img-size 64")
        if (self.d_init or self.d_features != "none") and not self.adversarial:
            raise UsageError("--d-init and --d-features choose the discriminator of --adversarial", "add --adversarial")
