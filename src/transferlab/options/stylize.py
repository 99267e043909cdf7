"""The options of ``transferlab stylize`` (style transfer by optimisation) and ``transferlab
stylize train`` (a feed-forward style network)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from transferlab.engine.options import CpuDefaults, TrainOptions, option
from transferlab.errors import UsageError


@dataclass
class StyleTrainOptions(TrainOptions):
    #: 256 px: bf16 1.6x; channels_last is slower here (reflection padding and instance norm)
    cpu_defaults = CpuDefaults(channels_last=False)

    network: str = option("lite0", "Feature network: lite0 (built in, offline), vgg16 or vgg19.")
    weights: str | None = option(None, "Weights file for the feature network.")
    smoothing: str | None = option(None, "Activation smoothing: none, channel or all (default: the network's).")
    train_size: int = option(256, "Side of the square training crops.")
    style_size: int = option(256, "The style image's longer side when its Gram matrices are taken.")
    steps: int = option(2000, "Training steps.", resumable=True)
    batch_size: int = option(4, "Crops per step.")
    lr: float = option(1e-3, "Adam's learning rate.")
    style_weight: float = option(5.0, "Weight of the style (Gram) loss.")
    content_weight: float = option(1.0, "Weight of the content loss.")
    tv_weight: float = option(0.0, "Weight of the total-variation loss.")
    width: int = option(32, "Channels of the network's first layer.")
    blocks: int = option(5, "Residual blocks.")
    checkpoint_every: int = option(200, "Checkpoint every N steps.", resumable=True)

    def check(self) -> None:
        self.check_training()
        if not 32 <= self.train_size <= 1024:
            raise UsageError(f"--train-size {self.train_size} is outside 32..1024", "e.g. --train-size 256")
        if self.steps < 1 or self.batch_size < 1:
            raise UsageError("--steps and --batch-size must be at least 1", "e.g. --steps 2000 --batch-size 4")
        if self.width < 4 or self.blocks < 1:
            raise UsageError("--width must be at least 4 and --blocks at least 1", "e.g. --width 32 --blocks 5")


#: Outputs larger than this on their longer side are refused (use tiling outside, or a GPU with memory).
MAX_SIZE = 4096


@dataclass
class StylizeOptions:
    """Style transfer by optimisation (Gatys et al.): the image is the parameter; no training run."""

    size: int = option(512, "The output's longer side in pixels (with --model: as the input is, unless given).")
    network: str = option("lite0", "Feature network: lite0 (built in, offline), vgg16 or vgg19.")
    weights: str | None = option(None, "Weights file for the feature network.")
    smoothing: str | None = option(
        None, "Activation smoothing (default: the network's).", choices=("none", "channel", "all")
    )
    # 50, by measurement (BENCHMARKS.md, "stylize: choosing the defaults"): at 384 px on fruits x Starry
    # Night, 5 kept more content (relative content error 0.50 vs 1.18) but left twice the style loss
    style_weight: float = option(50.0, "Weight of the style (Gram) loss.")
    content_weight: float = option(1.0, "Weight of the content loss.")
    tv_weight: float = option(0.0, "Weight of the total-variation loss.")
    optimizer: str = option("lbfgs", "lbfgs or adam.", choices=("lbfgs", "adam"))
    steps: int = option(300, "Loss evaluations per resolution level (L-BFGS) or Adam steps per level.")
    lr: float = option(0.02, "Adam's learning rate.")
    init: str = option("content", "Start from the content image or from noise.", choices=("content", "noise"))
    multiscale: bool = option(True, "Coarse-to-fine for large outputs.", flags=("--multiscale/--single-scale",))
    preserve_color: bool = option(False, "Stylise luminance only; keep the content's colours.")
    style_mix: list[float] = field(default_factory=list, metadata={"help": None})  # --style-mix 0.7,0.3
    seed: int = option(0, "Seed of the noise start.")

    def check(self) -> None:
        for spec in fields(self):
            allowed, value = spec.metadata.get("choices"), getattr(self, spec.name)
            if allowed and value is not None and str(value) not in allowed:
                flag = f"--{spec.name.replace('_', '-')}"
                raise UsageError(f"unknown {flag} '{value}'", f"use one of: {', '.join(allowed)}")
        if not 32 <= self.size <= MAX_SIZE:
            raise UsageError(f"--size {self.size} is outside 32..{MAX_SIZE}", "pick an output size such as 512 or 1024")
        if self.steps < 1:
            raise UsageError("--steps must be at least 1", "e.g. --steps 300")
