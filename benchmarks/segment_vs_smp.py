"""`segment train` against a plain PyTorch loop over segmentation_models_pytorch's Unet with the same
encoder weights (timm's tf_efficientnet_lite0 through smp's ``tu-`` encoders, loaded with the
ImageNet Lite0 weights transferlab ships), in one process, on the ISBI membranes: the same crops
(192 px, batch 8, the same random scaled crops and flips), the same optimiser and schedule
(AdamW 1e-3, encoder at 0.1x, cosine), the same loss (CE + Dice), 30 epochs; the same held-out
scoring (mIoU at 512x512). Training throughput is timed over the steady steps (held-out scoring
excluded).

smp is not a transferlab dependency: install it beside the venv without its dependencies
(`python -m venv /work/smp-venv && /work/smp-venv/bin/pip install --no-deps segmentation-models-pytorch`)
and put its site-packages on PYTHONPATH.

    PYTHONPATH=/work/smp-venv/lib/python3.11/site-packages .venv/bin/python benchmarks/segment_vs_smp.py --seeds 0,1
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT
from cpu_speed import step_clock
from segment_membrane import membrane

EPOCHS, BATCH, SIZE, WARMUP = 30, 8, 192, 3


def transferlab_run(data: Path, seed: int, out: Path) -> tuple[float, float]:
    """(steady training images/s, held-out mIoU) of `segment train`, its steps timed as they happen."""
    from transferlab.tasks import segment

    with step_clock() as times:  # the engine's own step boundaries
        result = segment.train(data, out=out, seed=seed, epochs=EPOCHS, batch_size=BATCH, img_size=SIZE,
                               strategy="full", accelerator="cpu")  # fmt: skip
    return steady_rate(times), result.scores["miou"]


def steady_rate(times: list[float]) -> float:
    """Images/s over the steps after WARMUP, leaving out each epoch's held-out scoring (the step
    after it is the slowest gap of its epoch)."""
    gaps = sorted(b - a for a, b in zip(times[WARMUP:], times[WARMUP + 1 :]))
    kept = gaps[: max(1, int(len(gaps) * 0.6))]  # the scoring gaps are the largest third
    return BATCH / statistics.median(kept)


def smp_run(data: Path, seed: int) -> tuple[float, float]:
    """The same job as a plain loop: smp.Unet, torch.optim, the same crops, loss and scoring."""
    import segmentation_models_pytorch as smp
    import torch

    from transferlab import backbones
    from transferlab.engine.batches import BatchDraw
    from transferlab.engine.performance import for_inference
    from transferlab.tasks.segment.data import load_segmentation
    from transferlab.tasks.segment.losses import SegmentationLoss
    from transferlab.tasks.segment.recipe import SCALES, random_crop, score

    torch.manual_seed(seed)
    split = load_segmentation(data, seed=seed)
    net = smp.Unet("tu-tf_efficientnet_lite0", encoder_weights=None, classes=len(split.classes))
    lite0 = backbones.create("tf_efficientnet_lite0", num_classes=0, img_size=SIZE).model.state_dict()
    net.encoder.model.load_state_dict({k: v for k, v in lite0.items() if k in net.encoder.model.state_dict()})
    mean = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)  # Lite0's normalisation (timm's tf_ weights)
    encoder = list(net.encoder.parameters())
    ids = {id(p) for p in encoder}
    rest = [p for p in net.parameters() if id(p) not in ids]
    optimizer = torch.optim.AdamW([{"params": encoder}, {"params": rest}], lr=1e-3, weight_decay=1e-4)
    loss_fn = SegmentationLoss("ce+dice", split.ignore_index)
    steps_per_epoch = math.ceil(len(split.train) / BATCH)
    total, times = EPOCHS * steps_per_epoch, []
    for step in range(total):
        cosine = 0.5 * (1 + math.cos(math.pi * step / total))
        optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"] = 1e-4 * cosine, 1e-3 * cosine
        if step % steps_per_epoch == 0:
            net.train()
        draw = BatchDraw.for_step(seed, step, BATCH)
        index, scale = draw.indices(len(split.train)).tolist(), draw.uniform()
        corners, flips = draw.uniform(2), draw.flips().tolist()
        scales = (SCALES[0] * (SCALES[1] / SCALES[0]) ** scale).tolist()
        pairs = [random_crop(split.train.images[i], split.train.masks[i], SIZE, s, c, f, split.ignore_index)
                 for i, s, c, f in zip(index, scales, corners, flips)]  # fmt: skip
        x = (torch.stack([p[0] for p in pairs]).float() / 255 - mean) / mean
        loss = loss_fn(net(x), torch.stack([p[1] for p in pairs]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter())
        if (step + 1) % steps_per_epoch == 0:  # held-out scoring each epoch, as segment train does
            score(Normalised(net, mean), split.val, split.classes, split.ignore_index, SIZE, for_inference("cpu"))
    final = score(Normalised(net, mean), split.val, split.classes, split.ignore_index, SIZE, for_inference("cpu"))
    return steady_rate(times), final["miou"]


class Normalised:
    """The smp network behind the [0, 1] input the shared scoring gives (Lite0's normalisation)."""

    def __new__(cls, net, mean):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net((x - mean.to(x)) / mean.to(x))

        return Wrapped()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    data = membrane(Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache")))
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in map(int, args.seeds.split(",")):
            ours.append(transferlab_run(data, seed, Path(tmp) / f"t{seed}"))
            theirs.append(smp_run(data, seed))
            print(f"seed {seed}: transferlab {ours[-1][0]:.1f} img/s, mIoU {ours[-1][1]:.3f}; "
                  f"smp loop {theirs[-1][0]:.1f} img/s, mIoU {theirs[-1][1]:.3f}", flush=True)  # fmt: skip
    for name, rows in (("segment train", ours), ("plain loop over smp.Unet", theirs)):
        rates, mious = [r[0] for r in rows], [r[1] for r in rows]
        each = ", ".join(f"{m:.3f}" for m in mious)
        print(f"| {name} | {statistics.mean(rates):.1f} | {statistics.mean(mious):.3f} ({each}) |")
    print(f"throughput ratio: {statistics.mean(r[0] for r in ours) / statistics.mean(r[0] for r in theirs):.2f}x")


if __name__ == "__main__":
    main()
