"""CPU speed of `classify`, as ratios against references run in the same process.

1. Fine-tuning throughput (img/s) of transferlab's training path against a plain timm + PyTorch
   loop (DataLoader with timm's transforms, 2 workers, AdamW) on the same model, resolution,
   batch size and images.
2. Linear probe: transferlab's cached-feature training against running the frozen backbone
   every epoch, for the same number of epochs.

    .venv/bin/python benchmarks/classify_cpu.py [--images 2000] [--size 64] [--epochs 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import cifar10_folder
from transferlab import backbones
from transferlab.data import load_data
from transferlab.data.transforms import TransformedImages, train_transform
from transferlab.tasks import classify


def subset(splits, n_train: int, n_val: int):
    splits = splits.few_shot(n_train // splits.num_classes, seed=0)
    splits.val = splits.val.subset(range(0, len(splits.val), max(1, len(splits.val) // n_val)))
    return splits


def plain_timm_epoch(splits, size: int, batch: int) -> float:
    """img/s of one epoch of a textbook timm + PyTorch fine-tuning loop."""
    model, config, _ = backbones.create("tf_efficientnet_lite0", num_classes=splits.num_classes, img_size=size)
    loader = torch.utils.data.DataLoader(
        TransformedImages(splits.train, train_transform(config)), batch_size=batch, shuffle=True, num_workers=2,
        drop_last=True, persistent_workers=False,
    )  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    seen, start = 0, time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
    return seen / (time.perf_counter() - start)


def transferlab_epoch(splits, size: int, batch: int, out: Path) -> float:
    """img/s of transferlab's second training epoch (the first includes decoding once)."""
    result = classify.fit(
        splits, out=out, backbone="tf_efficientnet_lite0", strategy="full", epochs=3, eval_every=3, img_size=size,
        batch_size=batch, devices=1, accelerator="cpu",
    )  # fmt: skip
    steady = result.history[1]
    images = (len(splits.train) // batch) * batch
    return images / steady["seconds"]


def per_epoch_linear(splits, size: int, batch: int, epochs: int) -> float:
    """Wall seconds of a linear probe that runs the frozen backbone over the data every epoch."""
    from transferlab.data.loaders import make_batches

    model, config, _ = backbones.create("tf_efficientnet_lite0", num_classes=splits.num_classes, img_size=size)
    model.eval()
    head = model.get_classifier()
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3)
    source = make_batches(splits.train, config, torch.device("cpu"))
    start = time.perf_counter()
    for epoch in range(epochs):
        for x, y in source.batches(batch, train=False, epoch=epoch):
            with torch.no_grad():
                feats = model.forward_head(model.forward_features(x), pre_logits=True)
            loss = F.cross_entropy(head(feats), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--part", choices=["all", "finetune", "linear"], default="all")
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = cifar10_folder(Path(tmp) / "data")
        splits = subset(load_data(root), args.images, 500)
        print(f"data: {splits.summary()}; {torch.get_num_threads()} CPU threads; size {args.size}, batch {args.batch}")
        if args.part in ("all", "finetune"):
            plain = plain_timm_epoch(splits, args.size, args.batch)
            ours = transferlab_epoch(splits, args.size, args.batch, Path(tmp) / "run")
            print(
                f"fine-tuning  plain timm loop {plain:7.1f} img/s | transferlab {ours:7.1f} img/s "
                f"| ratio {ours / plain:.2f}x"
            )
        if args.part == "finetune":
            return
        start = time.perf_counter()
        result = classify.fit(
            splits, out=Path(tmp) / "lin", strategy="linear", epochs=args.epochs, eval_every=args.epochs,
            img_size=args.size, batch_size=args.batch, devices=1, accelerator="cpu",
        )  # fmt: skip
        whole = time.perf_counter() - start
        naive = per_epoch_linear(splits, args.size, args.batch, args.epochs)
        print(
            f"linear probe {args.epochs} epochs: per-epoch forward {naive:6.1f} s | cached features: training "
            f"{result.wall_seconds:5.1f} s (model, decoding, features, head), whole run {whole:5.1f} s (+ evaluation, "
            f"report) | ratio {naive / result.wall_seconds:.1f}x training, {naive / whole:.1f}x whole run"
        )
        head_epoch = sum(row["seconds"] for row in result.history[:-1]) / max(1, len(result.history) - 1)
        print(
            f"linear probe per epoch: per-epoch forward {naive / args.epochs:6.2f} s | cached features "
            f"{head_epoch:6.3f} s | ratio {naive / args.epochs / head_epoch:.0f}x"
        )


if __name__ == "__main__":
    main()
