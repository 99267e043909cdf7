"""GPU benchmark of `classify` on CIFAR-10 (issue 3), for the device tool's H100.

Data: ../shared/data/cifar10.tar.gz (45,000 train / 5,000 val JPEGs, 32 px), model
tf_efficientnet_lite0 from the offline ImageNet weights. Reference measured on one H100 with
timm's own train.py (224 px, bf16, channels_last, batch 256, SGD, 3 epochs): ~5,250 img/s
steady state, ~4,150 img/s over an epoch, 92 s wall, 86.8% val accuracy.

Configurations (each a separate process-internal run; wall time is start to finish, data
decoding included):
  timm-settings: 224 px, bf16, channels_last, batch 256, SGD, 3 epochs (throughput vs 5,250 img/s)
  fast:          the recipe aimed at >= 95% val accuracy in <= 60 s

    python benchmarks/classify_gpu.py [--config timm-settings|fast|both] [--compile]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import cifar10_folder

CONFIGS = {
    "timm-settings": {
        "img_size": 224, "batch_size": 256, "optimizer": "sgd", "lr": 0.4, "body_lr_mult": 1.0, "epochs": 3,
        "strategy": "full", "precision": "bf16-mixed", "warmup_epochs": 0.3, "weight_decay": 5e-5,
    },
    "fast": {
        "img_size": 160, "batch_size": 256, "optimizer": "sgd", "lr": 0.3, "body_lr_mult": 0.5, "epochs": 3,
        "strategy": "full", "precision": "bf16-mixed", "warmup_epochs": 0.3, "weight_decay": 5e-5,
        "label_smoothing": 0.1, "crop_scale": 0.5, "eval_every": 3,
    },
}  # fmt: skip


def run(name: str, root: Path, out: Path, compile_model: bool) -> dict:
    from transferlab.tasks import classify

    start = time.perf_counter()
    result = classify.fit(
        str(root), out=out / name, backbone="tf_efficientnet_lite0", compile=compile_model, **CONFIGS[name]
    )
    wall = time.perf_counter() - start
    train_images = 45_000 // CONFIGS[name]["batch_size"] * CONFIGS[name]["batch_size"]
    epoch_rates = [train_images / row["seconds"] for row in result.history]
    return {
        "config": name, "compile": compile_model, "wall_s": round(wall, 1), "val_acc": round(result.val_acc, 4),
        "img_s_per_epoch": [round(r) for r in epoch_rates], "img_s_best_epoch": round(max(epoch_rates)),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="both", choices=[*CONFIGS, "both"])
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    names = list(CONFIGS) if args.config == "both" else [args.config]
    with tempfile.TemporaryDirectory() as tmp:
        root = cifar10_folder(Path(tmp) / "data")
        for name in names:
            print(json.dumps(run(name, root, Path(tmp) / "runs", args.compile)), flush=True)


if __name__ == "__main__":
    main()
