"""The options of ``transferlab stylize train`` (a feed-forward style network)."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import CpuDefaults, TrainOptions, option


@dataclass
class StyleTrainOptions(TrainOptions):
    #: 256 px: bf16 1.6x; channels_last is slower here (reflection padding and instance norm)
    cpu_defaults = CpuDefaults(channels_last=False)

    network: str = option("lite0", "Feature network: lite0 (built in, offline), vgg16 or vgg19.")
    weights: str | None = option(None, "Weights file for the feature network.")
    smoothing: str | None = option(None, "Activation smoothing: none, channel or all (default: the network's).")
    train_size: int = option(256, "Side of the square training crops.")
    style_size: int = option(256, "The style image's longer side when its Gram matrices are taken.")
    steps: int = option(2000, "Training steps.")
    batch_size: int = option(4, "Crops per step.")
    lr: float = option(1e-3, "Adam's learning rate.")
    style_weight: float = option(5.0, "Weight of the style (Gram) loss.")
    content_weight: float = option(1.0, "Weight of the content loss.")
    tv_weight: float = option(0.0, "Weight of the total-variation loss.")
    width: int = option(32, "Channels of the network's first layer.")
    blocks: int = option(5, "Residual blocks.")
    checkpoint_every: int = option(200, "Checkpoint every N steps.")
