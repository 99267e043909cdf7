"""The options of ``transferlab segment train`` (semantic segmentation on a pretrained encoder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transferlab.engine.options import FOUND_RATE, CpuDefaults, EpochOptions, check_share, option
from transferlab.errors import UsageError
from transferlab.strategies import SEGMENT, names_for

STRATEGIES = names_for(SEGMENT)  # the shared registry (transferlab/strategies.py)
LOSSES = ("ce+dice", "ce", "dice", "focal", "focal+dice")
SCHEDULES = ("constant", "cosine")
CROPS = ("square", "frame")
#: Defaults that depend on the device (an option left unset takes them): on a 2-core CPU, a step of
#: 8 crops of 192 px takes 0.6-0.9 s (the VM's speed varies). The run trains up to 60 epochs and
#: the 19-minute budget of training and held-out scoring ends it (measured as the run goes; set-up
#: and report took 0.2 min more on 400 images of 360x480), within the 20 minutes the defaults aim
#: for: a larger set or a slower machine trains fewer epochs, not longer. Ending at a fixed 30
#: epochs (1,500 steps) left 1-2 of the 19 minutes unused, and the budget's epochs scored higher on
#: every set measured: +4 mIoU points on two many-class sets, +1 on the membranes (BENCHMARKS.md).
#: 160 px scored higher on scenes of upscaled 32 px objects but lost 2 mIoU points on thin
#: membranes, so 192 it is. A GPU takes the full resolution class of 512 px and 80 epochs.
#: The rate is held constant on a CPU: a cosine decay over the epochs a budget fits spends the
#: last third of the run at small rates while the rare classes are still being learnt, and cost
#: 6-8 mIoU points on two many-class sets at 20 minutes (nothing on the membranes). A GPU's runs
#: are not cut by a budget: there the cosine decay, the usual choice for a run of known length.
DEVICE_DEFAULTS: dict[str, dict[str, Any]] = {
    "cpu": {"img_size": 192, "epochs": 60, "batch_size": 8, "time_budget": 19, "schedule": "constant"},
    "gpu": {"img_size": 512, "epochs": 80, "batch_size": 16, "time_budget": 0, "schedule": "cosine"},
}


def check_side(name: str, size: int | None) -> None:
    """A crop or prediction side (``--img-size``, ``--predict-size``) is a multiple of 32 (the
    encoder's coarsest stride)."""
    if size is not None and (size < 32 or size % 32):
        raise UsageError(f"--{name.replace('_', '-')} {size} is not a multiple of 32", "e.g. 192 or 256")


@dataclass
class SegmentOptions(EpochOptions):
    cpu_defaults = CpuDefaults(bf16=False, why="measured no faster than 32-bit for segmentation on an AMX CPU")
    device_defaults = DEVICE_DEFAULTS
    device_defaults_why = "chosen on binary membranes and three many-class sets of real images (BENCHMARKS.md)"

    images: str | None = option(None, "A folder of images (paired with --masks by file name stem).")
    masks: str | None = option(None, "A folder of masks: class indices, a palette PNG, 0/255, or colours (--classes).")
    val_images: str | None = option(None, "Held-out images (else --val-fraction of the training ones).")
    val_masks: str | None = option(None, "Held-out masks.")
    classes: str | None = option(None, "Class names: a comma list, or a file of 'name' or 'name,r,g,b' lines.")
    ignore_index: int = option(255, "Mask value of void pixels, which no loss or metric counts.")
    val_fraction: float = option(0.2, "Held-out part when the data has none (seeded).")
    backbone: str = option("tf_efficientnet_lite0", "The encoder: any backbone spec (`transferlab backbones`).")
    decoder: str = option("unet", "unet (smp's layout), unet-transposed (the layout before) or fpn "
                          "(registry in transferlab/dense.py).")  # fmt: skip
    width: int = option(32, "The decoder's base width.")
    strategy: str = option("full", "frozen, full (encoder at --encoder-lr-mult), gradual, scratch.", choices=STRATEGIES)
    encoder_lr_mult: float = option(0.1, "The encoder's learning rate relative to --lr (full, gradual).")
    img_size: int | None = option(None, "Training crop side; images are scaled so their shorter side is this.")
    predict_size: int | None = option(
        None, "The shorter side images are predicted at (held-out scoring, evaluate, apply, serve); default 4/3 of "
        "--img-size: the crops' random scales show objects larger in training than at --img-size.",
    )  # fmt: skip
    epochs: int | None = option(None, "Passes over the training images.", resumable=True)
    batch_size: int | None = option(None, "Crops per step.")
    lr: float | str = option(2e-3, "AdamW's learning rate (the decoder's; see --schedule)" + FOUND_RATE)
    weight_decay: float = option(1e-4, "AdamW's weight decay.")
    schedule: str | None = option(
        None, "The rate over the run: constant, or a cosine decay to 0 (default: constant on a CPU, whose budget "
        "ends the run; cosine on a GPU).", choices=SCHEDULES,
    )  # fmt: skip
    crop: str = option("square", "Training crops: square (img-size sides), or frame (the training images' "
                       "median aspect, so scale 1 is the whole frame).", choices=CROPS)  # fmt: skip
    scales: str = option("0.75,1.5", "Random crop scales MIN,MAX (log-uniform) relative to the scoring size; "
                         "1,1: no rescaling.")  # fmt: skip
    corrupt: float = option(
        0.0, "Share of training crops passed through a random ImageNet-C corruption (noise, blur, weather, "
        "digital; severity 1-5; not elastic_transform or glass_blur): robustness as augmentation (see "
        "`segment evaluate --corruptions`).",
    )  # fmt: skip
    loss: str = option("ce+dice", "ce, dice, focal, or sums such as ce+dice.", choices=LOSSES)
    class_weights: str = option("none", "none, or balanced (inverse pixel frequency) for cross-entropy.",
                                choices=("none", "balanced"))  # fmt: skip
    eval_every: int = option(
        5, "Held-out mIoU every N epochs (and at the last); every epoch took a fifth of a CPU run's time at the "
        "4/3 prediction size.", resumable=True,
    )  # fmt: skip

    def check(self) -> None:
        self.check_training()
        if (self.images is None) != (self.masks is None) or (self.val_images is None) != (self.val_masks is None):
            raise UsageError("--images/--masks (and --val-images/--val-masks) go in pairs", "pass both folders")
        for name in ("img_size", "predict_size"):
            check_side(name, getattr(self, name))
        self.check_budgets()
        self.check_counts("epochs", "batch_size", "eval_every", "width")
        self.scale_range()
        self.check_rate()
        check_share("corrupt", self.corrupt)
        if not 0 < self.val_fraction < 1 or self.encoder_lr_mult < 0 or self.weight_decay < 0:
            raise UsageError("--val-fraction in (0, 1), --encoder-lr-mult >= 0, --weight-decay >= 0",
                             "e.g. --encoder-lr-mult 0.1 --weight-decay 1e-4")  # fmt: skip

    def scale_range(self) -> tuple[float, float]:
        """--scales as (min, max), refused unless 0 < min <= max."""
        try:
            low, high = (float(v) for v in self.scales.split(","))
        except ValueError:
            raise UsageError(f"--scales '{self.scales}' is not MIN,MAX", "e.g. --scales 0.75,1.5") from None
        if not 0 < low <= high:
            raise UsageError(f"--scales '{self.scales}' needs 0 < MIN <= MAX", "e.g. --scales 0.75,1.5")
        return low, high

    def prediction_side(self) -> int:
        """--predict-size, or 4/3 of --img-size in multiples of 32 (192 -> 256), where a model
        trained on scales 0.75-1.5 of --img-size scored best (BENCHMARKS.md, "segment: the factors")."""
        return self.predict_size or max(32, round(self.img_size * 4 / 3 / 32) * 32)
