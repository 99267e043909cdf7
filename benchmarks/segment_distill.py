"""Does pixel-wise distillation pay for segmentation? (#33: build it into `segment` only if it does.)

On the ISBI membranes (the last 6 of the 30 slices the test set, as `robust_training.py` cuts
them), with the segment CPU defaults and no time budget (every epoch, so the comparison does not
depend on the machine's speed):

- the teacher: a U-Net on the larger ImageNet EfficientNet-Lite2, fine-tuned (`segment train`);
- the student alone: the default Lite0 U-Net, fine-tuned the same way;
- the student distilled: the same, its loss ``(1 - alpha) * L_seg + alpha * KD`` with ``KD`` the
  Hinton KD loss over every pixel of the crop (Liu et al. 2019's pixel-wise distillation: each
  pixel's class distribution is a sample), the teacher frozen in eval mode on the same crops.

Test mIoU of each, per seed, and the students' latency on a 512 x 512 slice.

    cd benchmarks && ../.venv/bin/python segment_distill.py [--seeds 0] [--alpha 0.5] [--temperature 1]

The distilled student is a subclass of the segment recipe made here, not a transferlab option.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import torch
from torch import nn

from common import ROOT, mean_spread
from robust_training import split
from segment_membrane import membrane
from transferlab.engine.batches import BatchDraw
from transferlab.engine.run import run
from transferlab.speed import torch_latency_ms
from transferlab.tasks import segment
from transferlab.tasks.distill.losses import HintonKD
from transferlab.tasks.segment.inference import load_segmenter
from transferlab.tasks.segment.recipe import SegmentRecipe

TEACHER, STUDENT = "tf_efficientnet_lite2", "tf_efficientnet_lite0"
CACHE = Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache"))


def per_pixel(logits: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> (N*H*W) x C: each pixel a row, as the KD loss takes samples."""
    return logits.permute(0, 2, 3, 1).reshape(-1, logits.shape[1])


class PixelKDLoss(nn.Module):
    """``(1 - alpha) * L_seg(student, masks) + alpha * KD(student, teacher)`` over every pixel; the
    teacher's logits of the step's crops are set by the recipe before each step's loss."""

    def __init__(self, segmentation: nn.Module, alpha: float, temperature: float) -> None:
        super().__init__()
        self.segmentation, self.alpha, self.kd = segmentation, alpha, HintonKD(temperature)
        self.teacher_logits: torch.Tensor | None = None

    def forward(self, student: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        kd = self.kd(per_pixel(student), per_pixel(self.teacher_logits))
        return (1 - self.alpha) * self.segmentation(student, masks) + self.alpha * kd


class PixelKDRecipe(SegmentRecipe):
    """The segment recipe whose loss also follows the frozen teacher on the same crops."""

    teacher_dir: ClassVar[Path]
    alpha: ClassVar[float] = 0.5
    temperature: ClassVar[float] = 1.0

    def __init__(self, data: Any, opts: Any, fabric: Any, run_dir: Path) -> None:
        super().__init__(data, opts, fabric, run_dir)
        self.teacher = load_segmenter(self.teacher_dir, fabric.device)[0]
        self.loss = PixelKDLoss(self.loss, self.alpha, self.temperature)

    def batch(self, draw: BatchDraw) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().batch(draw)
        with torch.no_grad():
            self.loss.teacher_logits = self.teacher(x)
        return x, y


def latency_ms(run_dir: Path, side: int = 512) -> float:
    """Median ms of one forward pass of the run's network on a side x side image (this CPU's threads)."""
    return torch_latency_ms(load_segmenter(run_dir)[0], torch.rand(1, 3, side, side), warmup=2, repeats=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=1.0)
    args = parser.parse_args()
    PixelKDRecipe.alpha, PixelKDRecipe.temperature = args.alpha, args.temperature
    rows: dict[str, list[float]] = {"teacher": [], "student alone": [], "student distilled": []}
    seconds: dict[str, list[float]] = {k: [] for k in rows}
    latency: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        train, test = split(membrane(CACHE), Path(tmp) / "data", "masks", 6)
        data = {"images": str(train / "images"), "masks": str(train / "masks")}
        held = {"images": str(test / "images"), "masks": str(test / "masks")}
        common = {"strategy": "full", "accelerator": "cpu", "time_budget": 0}
        for seed in map(int, args.seeds.split(",")):
            out = Path(tmp) / f"seed{seed}"
            options = {**data, **common, "seed": seed}
            runs = {
                "teacher": partial(segment.train, backbone=TEACHER, out=out / "teacher", **options),
                "student alone": partial(segment.train, backbone=STUDENT, out=out / "alone", **options),
                "student distilled": partial(run, PixelKDRecipe, None, backbone=STUDENT, out=out / "kd", **options),
            }
            for name, train_run in runs.items():
                started = time.perf_counter()
                result = train_run()
                seconds[name].append(time.perf_counter() - started)
                if name == "teacher":
                    PixelKDRecipe.teacher_dir = result.run_dir
                miou = segment.evaluate(result.run_dir, **held)["miou"]
                rows[name].append(miou)
                latency[name] = latency_ms(result.run_dir)
                print(f"seed {seed} {name}: test mIoU {miou:.3f}, {seconds[name][-1]:.0f} s, "
                      f"{latency[name]:.0f} ms a 512 px slice", flush=True)  # fmt: skip
    print("\n| network | test mIoU | training s | ms a 512 px slice |\n| --- | --- | --- | --- |")
    for name, scores in rows.items():
        print(f"| {name} | {mean_spread(scores)} | {sum(seconds[name]) / len(seconds[name]):.0f} | "
              f"{latency[name]:.0f} |")  # fmt: skip
    print(json.dumps({"alpha": args.alpha, "temperature": args.temperature, "mIoU": rows, "seconds": seconds,
                      "latency_ms": latency}))  # fmt: skip


if __name__ == "__main__":
    main()
