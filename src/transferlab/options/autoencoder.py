"""The options of ``transferlab autoencoder pretrain``."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import CpuDefaults, TrainOptions, option
from transferlab.errors import UsageError


@dataclass
class AutoencoderOptions(TrainOptions):
    cpu_defaults = CpuDefaults()  # resnet10t at 32 px: bf16 + channels_last 1.2x, final loss held

    encoder: str = option("resnet10t", "A timm architecture (trained from scratch).")
    img_size: int = option(32, "A power of two: 32, 64, 128...")
    steps: int = option(2000, "Training steps.", resumable=True)
    batch_size: int = option(64, "Images per step.")
    lr: float = option(1e-3, "AdamW's peak learning rate (cosine schedule).")
    noise: float = option(0.0, "Denoising: std of the input noise, in normalised units (0 = plain).")
    checkpoint_every: int = option(500, "Checkpoint every N steps.", resumable=True)

    def check(self) -> None:
        self.check_training()
        if self.steps < 1 or self.batch_size < 2 or self.noise < 0:
            raise UsageError("--steps >= 1, --batch-size >= 2 and --noise >= 0 are needed", "e.g. --steps 2000")
