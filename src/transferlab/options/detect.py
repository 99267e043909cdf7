"""The options of ``transferlab detect train`` (object detection on a pretrained backbone)."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.engine.options import FOUND_RATE, CpuDefaults, EpochOptions, check_share, option
from transferlab.errors import UsageError
from transferlab.strategies import DETECT, names_for

STRATEGIES = names_for(DETECT)  # the shared registry (transferlab/strategies.py)
INITS = ("imagenet", "coco")
#: Defaults that depend on the device (an option left unset takes them): on a 2-core CPU, FCOS over
#: Lite0 at 320 px takes about 1.4 s a step of 8 (BENCHMARKS.md, "detect"): 30 epochs of 160
#: training photos are 600 steps, about 15 minutes with held-out scoring; more photos train fewer
#: epochs within the same 600 steps, and a slower machine fewer within 18 minutes of training and
#: scoring. A GPU takes 640 px and a longer schedule, without a step or time cap.
DEVICE_DEFAULTS: dict[str, dict[str, float]] = {
    "cpu": {"img_size": 320, "epochs": 30, "batch_size": 8, "max_steps": 600, "time_budget": 18},
    "gpu": {"img_size": 640, "epochs": 60, "batch_size": 16, "max_steps": 0, "time_budget": 0},
}


@dataclass
class DetectOptions(EpochOptions):
    # channels_last measured 1.14-1.24x faster for FCOS on Lite0 at 320 px (BENCHMARKS.md, "detect");
    # 32-bit everywhere: boxes decoded in bf16 land on a grid of 2-4 pixels at 320-640 px.
    cpu_defaults = CpuDefaults(channels_last=True, bf16=False, gpu_bf16=False,
                               why="box coordinates need more than bf16's 8 bits")  # fmt: skip
    device_defaults = DEVICE_DEFAULTS

    images: str | None = option(None, "A folder of images (with --annotations).")
    annotations: str | None = option(None, "A folder of VOC XML or YOLO txt files, or a COCO instances JSON.")
    val_images: str | None = option(None, "Held-out images (else --val-fraction of the training ones).")
    val_annotations: str | None = option(None, "Held-out annotations (as --annotations).")
    classes: str | None = option(None, "Class names: a comma list or a file of one a line (default: as found).")
    val_fraction: float = option(0.2, "Held-out part when the data has none (seeded).")
    detector: str = option("fcos", "fcos, retinanet or fasterrcnn (registry in tasks/detect/models.py).")
    backbone: str = option("tf_efficientnet_lite0", "The backbone: any backbone spec (`transferlab backbones`).")
    init: str = option("imagenet", "imagenet: the backbone's weights; coco: torchvision's COCO detector "
                       "(ResNet-50 FPN, downloaded once).", choices=INITS)  # fmt: skip
    width: int = option(128, "The FPN's and the heads' channels (a multiple of 32, at least 64).")
    strategy: str = option("full", "frozen backbone, full (backbone at --encoder-lr-mult), scratch.",
                           choices=STRATEGIES)  # fmt: skip
    encoder_lr_mult: float = option(0.1, "The backbone's learning rate relative to --lr (full).")
    img_size: int | None = option(None, "The longer image side trained and detected at (a multiple of 32, >= 64).")
    epochs: int | None = option(None, "Passes over the training images.", resumable=True)
    batch_size: int | None = option(None, "Images per step.")
    lr: float | str = option(1e-3, "AdamW's learning rate (linear warm-up, then cosine)" + FOUND_RATE)
    corrupt: float = option(
        0.0, "Share of training images passed through a random ImageNet-C corruption (noise, blur, weather, "
        "digital; severity 1-5; not elastic_transform or glass_blur): robustness as augmentation (see "
        "`detect evaluate --corruptions`).",
    )  # fmt: skip
    score_threshold: float = option(0.05, "Detections below this score are dropped (mAP wants them low).")
    eval_every: int = option(2, "Held-out mAP every N epochs (and at the end).", resumable=True)

    def check(self) -> None:
        self.check_training()
        if (self.images is None) != (self.annotations is None):
            raise UsageError("--images and --annotations go together", "pass both")
        if (self.val_images is None) != (self.val_annotations is None):
            raise UsageError("--val-images and --val-annotations go together", "pass both")
        if self.img_size is not None and (self.img_size < 64 or self.img_size % 32):
            raise UsageError(f"--img-size {self.img_size} is not a multiple of 32 of at least 64", "e.g. 320")
        self.check_budgets()
        self.check_counts("epochs", "batch_size", "eval_every", "width")
        self.check_rate()
        check_share("corrupt", self.corrupt)
        if not 0 < self.val_fraction < 1 or self.encoder_lr_mult < 0:
            raise UsageError("--val-fraction in (0, 1), --encoder-lr-mult >= 0", "e.g. --val-fraction 0.2")
        if self.width % 32 or self.width < 64:  # FCOS's head normalises 32 groups, also on a 1x1 P7
            raise UsageError(f"--width {self.width} is not a multiple of 32 of at least 64", "e.g. 128")
        if not 0 <= self.score_threshold < 1:
            raise UsageError(f"--score-threshold {self.score_threshold} is not in [0, 1)", "e.g. 0.05")
        if self.init == "coco" and self.strategy == "scratch":
            raise UsageError("--init coco starts from trained weights; scratch starts from none",
                             "use --strategy full or frozen with --init coco")  # fmt: skip
