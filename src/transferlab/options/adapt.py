"""The options of one ``transferlab adapt`` run (one method, one seed)."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import CpuDefaults, TrainOptions, option


@dataclass
class AdaptOptions(TrainOptions):
    cpu_defaults = CpuDefaults()  # LeNet DANN: bf16 + channels_last 1.6x, accuracy held

    method: str = option("dann", None)  # one method per run; the CLI's --method takes a list
    backbone: str = option("lenet", "A backbone spec: lenet (28 px digits) or any classifier backbone (ImageNet).")
    img_size: int | None = option(None, "Common input size (default: the backbone's, 28 for lenet).")
    epochs: int = option(10, "Epochs (target accuracy is measured after each).", resumable=True)
    iters_per_epoch: int = option(500, "Steps per epoch.")
    batch_size: int = option(64, "Images per domain per step.")
    lr: float = option(0.01, "SGD's initial learning rate (decayed as the Transfer-Learning-Library does).")
    trade_off: float = option(1.0, "lambda: weight of the alignment (or labelled target) term.")
    target_labels: int = option(0, "Labelled target images per class (joint uses them).")
