"""Does transfer help translation? colorize and superres x4 on CIFAR-10 at 64 px, one budget:
the same Lite0 U-Net with its encoder from scratch, from ImageNet, and from an autoencoder
pretrained on other CIFAR images (``ae:RUN``); held-out PSNR / SSIM / Lite0 perceptual distance,
mean +- std over seeds. Then training throughput of ``transferlab translate`` against a plain
PyTorch loop over the same U-Net, data and losses, in the same process.

    .venv/bin/python benchmarks/translate_transfer.py [--steps 300] [--seeds 0,1,2] [--images 2000]

Data: ../shared/data/cifar10.tar.gz; training photos from its train part (``--images``, balanced
over classes), the autoencoder's from its val part (never used for translation).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")
os.environ.setdefault("TRANSFERLAB_QUIET", "1")
sys.path.insert(0, str(Path(__file__).parent))

from common import cifar10_folder

BACKBONE = "tf_efficientnet_lite0"


def subset(root: Path, target: Path, per_class: int) -> Path:
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir())[:per_class]:
            (target / folder.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target / folder.name / path.name)
    return target


def throughput(photos: Path, options: dict, steps: int) -> dict[str, float]:
    """img/s of `translate.train` (the difference of two budgets, so set-up cancels out) and of a
    plain loop: the same U-Net, batches, L1 + Lite0 distance and Adam, nothing else."""
    import torch
    import torch.nn.functional as F

    from transferlab.metrics.image import Lite0Distance
    from transferlab.options.translate import TranslateOptions
    from transferlab.tasks import translate
    from transferlab.tasks.translate.data import load_pairs
    from transferlab.tasks.translate.networks import UNet

    opts = {**options, "eval_every": 0, "checkpoint_every": 0, "task": "colorize"}
    seconds = []
    for budget in (steps // 4, steps):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            translate.train(photos, out=Path(tmp) / "run", **{**opts, "steps": budget})
            seconds.append(time.perf_counter() - start)
    tool = (steps - steps // 4) * opts["batch_size"] / (seconds[1] - seconds[0])
    o = TranslateOptions(**opts)
    torch.manual_seed(0)
    pairs = load_pairs(photos, "colorize", o.img_size, 0, o.val_fraction)
    net = UNet(BACKBONE, 3, o.img_size, o.decoder_width)
    distance = Lite0Distance()
    optimizer = torch.optim.Adam(net.parameters(), lr=o.lr, betas=(0.5, 0.999))
    batches = [pairs.train_batch(i, "colorize", o) for i in range(steps // 2)]
    start = time.perf_counter()
    for x, y in batches:  # the plain loop
        out = net(x)
        loss = F.l1_loss(out, y) + o.perceptual_weight * distance(out, y).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    plain = len(batches) * o.batch_size / (time.perf_counter() - start)
    return {"transferlab img/s": round(tool, 1), "plain loop img/s": round(plain, 1), "ratio": round(tool / plain, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--ae-steps", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmarks/translate"))
    parser.add_argument("--tasks", default="colorize,superres")
    args = parser.parse_args()
    import torch

    from transferlab.tasks import autoencoder, translate

    seeds = [int(s) for s in args.seeds.split(",")]
    tmp = Path(tempfile.mkdtemp())
    cifar = cifar10_folder(tmp / "data")
    photos = subset(cifar / "train", tmp / "photos", args.images // 10)
    unlabelled = cifar / "val"
    options = {"img_size": 64, "batch_size": 16, "steps": args.steps, "decoder_width": 32, "eval_every": 0,
               "checkpoint_every": 0, "perceptual_weight": 0.1}  # fmt: skip
    start = time.perf_counter()
    ae = autoencoder.pretrain(unlabelled, out=args.out / "ae", encoder=BACKBONE, img_size=64, steps=args.ae_steps,
                              batch_size=32)  # fmt: skip
    print(f"autoencoder: {args.ae_steps} steps on 5,000 CIFAR val images in {time.perf_counter() - start:.0f} s")
    entries = ["scratch", "imagenet", f"ae:{ae.run_dir}"]
    table = []
    for task in args.tasks.split(","):
        scores: dict[str, list[dict]] = {}
        for seed in seeds:
            results = translate.compare(photos, entries, out=args.out / f"{task}-seed{seed}", task=task, seed=seed,
                                        **options)  # fmt: skip
            for r in results:
                scores.setdefault(r.name.split(":")[0], []).append({**r.scores, "seconds": r.seconds})
        for name, runs in scores.items():
            row = {"task": task + (" x4" if task == "superres" else ""), "encoder": name}
            for key, label in (("psnr", "PSNR dB"), ("ssim", "SSIM"), ("lite0_distance", "Lite0 distance")):
                values = [r[key] for r in runs]
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                row[label] = f"{statistics.mean(values):.3f} +- {spread:.3f}"
            row["s/run"] = round(statistics.mean(r["seconds"] for r in runs), 1)
            table.append(row)
            print(json.dumps(row))
    speed = throughput(photos, {**options, "seed": 0}, max(40, args.steps // 5))
    print(json.dumps(speed))
    summary = {"machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}", "images": args.images,
               "seeds": seeds, "options": options, "table": table, "throughput": speed}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"summary: {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
