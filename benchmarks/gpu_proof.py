"""Every GPU figure of the "GPU proof" issue in one process, each beside its reference measured in the
same call on the same device, written as JSON to ``$OUT/gpu_proof.json`` (and printed as it comes).
``benchmarks/gpu_proof.sh`` sets up the environment and runs this; ``--dry-run`` runs every item for
a few steps on the CPU (a test runs it, so the script cannot rot unnoticed).

1. classify: CIFAR-10 (45,000 / 5,000), ImageNet Lite0, 224 px, bf16: `classify.fit` beside a plain
   timm + torchvision loop (same model, resolution, epochs, optimiser): wall time with data loading,
   held-out accuracy, steady training img/s and their ratio (goal >= 1.3x); then the `fast` recipe
   of classify_gpu.py (goal >= 95% in <= 60 s).
2. gan: one DCGAN epoch of the 45,000 images at 64 px against the pytorch/examples recipe (goal >= 2x).
3. stylize: 512 px, 300 L-BFGS evaluations (goal <= 1.4 s) beside the PyTorch tutorial's VGG19 loop;
   the feed-forward network's img/s at 512 x 512, batched bf16 beside one fp32 image at a time
   (goal >= 400 img/s).
4. segment: the GPU defaults (512 px class, bf16) for a fixed number of epochs beside the plain smp
   U-Net loop at the same resolution and epochs: img/s and test mIoU. detect: img/s beside
   torchvision's `train_one_epoch` body, and held-out mAP of the transferlab run.
5. serve: requests/s with dynamic batching on and off for a Lite0 classifier (torch runtime).

    python benchmarks/gpu_proof.py [--dry-run] [--only classify,gan] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import torch

from common import cifar10_folder
from cpu_speed import steady_rate, step_clock


@dataclass
class Scale:
    """Where and how big: the real sizes on a GPU, a few steps on the CPU with ``dry``."""

    dry: bool
    device: torch.device
    work: Path  # scratch space (runs, extracted data)

    def pick(self, real, dry):
        return dry if self.dry else real


ITEMS: dict[str, Callable[[Scale], dict]] = {}


def item(name: str) -> Callable:
    def add(fn: Callable[[Scale], dict]) -> Callable[[Scale], dict]:
        ITEMS[name] = fn
        return fn

    return add


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cifar_split(s: Scale, train: int = 6, val: int = 3) -> Path:
    """CIFAR-10's train/ and val/ class folders; a dry run extracts only the first ``train`` and
    ``val`` images of each class (extracting all 50,000 takes longer than the whole dry run)."""
    if not s.dry:
        return cifar10_folder(s.work.parent / "data")
    import tarfile

    from common import SHARED

    small, kept = s.work.parent / f"cifar-small-{train}-{val}", {}  # shared by the items: one pass of the archive
    if small.is_dir():
        return small
    with tarfile.open(SHARED / "cifar10.tar.gz") as archive:
        for member in archive:
            parts = Path(member.name).parts
            if not member.isfile() or len(parts) < 3 or parts[-3] not in ("train", "val"):
                continue
            key = parts[-3:-1]
            if kept.get(key, 0) < (train if key[0] == "train" else val):
                kept[key] = kept.get(key, 0) + 1
                target = small / key[0] / key[1] / parts[-1]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    return small


# ----------------------------------------------------------------------------- 1. classify


def plain_classify(root: Path, img_size: int, epochs: int, batch: int, cfg: dict, device: torch.device) -> dict:
    """The loop a timm user writes: ImageFolder + DataLoader workers, timm's Lite0 with the ImageNet
    weights, SGD with a warm-up and cosine, bf16 autocast, channels_last; scored after each epoch."""
    import timm
    import torchvision.datasets as datasets
    import torchvision.transforms as T

    from transferlab import backbones

    started = time.perf_counter()
    norm = T.Normalize((0.5,) * 3, (0.5,) * 3)  # Lite0's TensorFlow-origin normalisation
    resize = T.Resize(img_size, interpolation=T.InterpolationMode.BICUBIC)
    train = datasets.ImageFolder(str(root / "train"), T.Compose([resize, T.RandomHorizontalFlip(), T.ToTensor(), norm]))
    val = datasets.ImageFolder(str(root / "val"), T.Compose([resize, T.ToTensor(), norm]))
    workers = min(12, os.cpu_count() or 1) if device.type == "cuda" else 0
    loader = torch.utils.data.DataLoader(train, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                                         pin_memory=device.type == "cuda", persistent_workers=workers > 0)  # fmt: skip
    val_loader = torch.utils.data.DataLoader(val, batch_size=batch, num_workers=workers)
    model = timm.create_model("tf_efficientnet_lite0", num_classes=len(train.classes))
    weights = backbones.create("tf_efficientnet_lite0", num_classes=0, img_size=img_size).model.state_dict()
    model.load_state_dict(weights, strict=False)  # all but the new classifier
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, nesterov=True,
                                weight_decay=cfg["weight_decay"])  # fmt: skip
    total, warm = epochs * len(loader), max(1, int(cfg["warmup_epochs"] * len(loader)))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda k: (k + 1) / warm if k < warm else 0.5 * (1 + math.cos(math.pi * (k - warm) / (total - warm)))
    )
    times, accuracy = [], 0.0
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(model(x), y.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            sync(device)
            times.append(time.perf_counter())
        model.eval()
        right = count = 0
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16):
            for x, y in val_loader:
                x = x.to(device).contiguous(memory_format=torch.channels_last)
                right += int((model(x).argmax(1).cpu() == y).sum())
                count += len(y)
        accuracy = right / count
    return {"wall_s": round(time.perf_counter() - started, 1), "val_acc": round(accuracy, 4),
            "steady_img_s": round(steady_rate(times, batch, warmup=5), 1)}  # fmt: skip


@item("classify")
def classify_item(s: Scale) -> dict:
    from classify_gpu import CONFIGS
    from transferlab.tasks import classify

    root = cifar_split(s)
    cfg = dict(CONFIGS["timm-settings"])
    cfg.update(s.pick({"epochs": 2}, {"epochs": 1, "img_size": 32, "batch_size": 16}))
    accelerator = "gpu" if s.device.type == "cuda" else "cpu"
    started = time.perf_counter()
    with step_clock() as times:
        result = classify.fit(str(root), out=s.work / "classify", backbone="tf_efficientnet_lite0",
                              accelerator=accelerator, **cfg)  # fmt: skip
    ours = {"wall_s": round(time.perf_counter() - started, 1), "val_acc": round(result.val_acc, 4),
            "steady_img_s": round(steady_rate(times, cfg["batch_size"], warmup=5), 1)}  # fmt: skip
    plain = plain_classify(root, cfg["img_size"], cfg["epochs"], cfg["batch_size"], cfg, s.device)
    fast_cfg = {**CONFIGS["fast"], **s.pick({}, {"epochs": 1, "img_size": 32, "batch_size": 16, "eval_every": 1})}
    started = time.perf_counter()
    fast = classify.fit(str(root), out=s.work / "classify-fast", backbone="tf_efficientnet_lite0",
                        accelerator=accelerator, **fast_cfg)  # fmt: skip
    fast_row = {"wall_s": round(time.perf_counter() - started, 1), "val_acc": round(fast.val_acc, 4),
                "goal": ">= 0.95 in <= 60 s"}  # fmt: skip
    return {"settings": cfg, "transferlab": ours, "plain timm loop": plain, "fast recipe": fast_row,
            "throughput ratio (goal >= 1.3)": round(ours["steady_img_s"] / plain["steady_img_s"], 2)}  # fmt: skip


# ----------------------------------------------------------------------------- 2. gan


@item("gan")
def gan_item(s: Scale) -> dict:
    from gan_dcgan import reference_epoch, transferlab_epoch

    images = s.pick(45000, 60)
    folder = cifar10_folder(s.work.parent / "data") / "train" if not s.dry else cifar_split(s) / "train"
    batch, workers = s.pick(128, 16), s.pick(min(8, os.cpu_count() or 1), 0)
    reference, steps = reference_epoch(folder, batch, workers, s.device)
    ours = transferlab_epoch(folder, batch, steps, s.work / "gan", False)
    return {"images": images, "batch": batch, "steps": steps, "pytorch/examples s": round(reference, 2),
            "transferlab s": round(ours, 2), "speed-up (goal >= 2)": round(reference / ours, 2)}  # fmt: skip


# ----------------------------------------------------------------------------- 3. stylize


@item("stylize")
def stylize_item(s: Scale) -> dict:
    import numpy as np
    import torch.nn.functional as F
    from PIL import Image
    from skimage import data as skdata

    from stylize_speed import SHARED, feed_forward, tutorial_recipe
    from transferlab.tasks.stylize import stylize

    size, evals = s.pick(512, 64), s.pick(300, 3)
    content_path, style_path = s.work / "content.png", SHARED / "styles" / "starry_night.jpg"
    Image.fromarray(skdata.chelsea()).save(content_path)
    result = stylize(content_path, [style_path], out=s.work / "stylized", size=size, steps=evals, multiscale=False,
                     device=str(s.device))  # fmt: skip
    content = torch.from_numpy(skdata.chelsea()).permute(2, 0, 1)[None].float().div(255)
    content = F.interpolate(content, size=(size * 300 // 451, size), mode="bilinear").to(s.device)
    style = torch.from_numpy(np.array(Image.open(style_path).convert("RGB"))).permute(2, 0, 1)[None].float() / 255
    reference = tutorial_recipe(content, F.interpolate(style, size=content.shape[-2:]).to(s.device), evals, s.device)
    plain, batched = feed_forward(size, s.pick(32, 2), s.device, s.pick(256, 2))
    return {"size": size, "evaluations": evals, "transferlab s (goal <= 1.4)": round(result.trace.seconds, 2),
            "tutorial VGG19 s": round(reference, 2), "feed-forward plain img/s": round(plain, 1),
            "feed-forward batched img/s (goal >= 400)": round(batched, 1)}  # fmt: skip


# ----------------------------------------------------------------------------- 4. segment, detect


@item("segment")
def segment_item(s: Scale) -> dict:
    from segment_sets import SETS
    from segment_vs_smp import smp_loop, transferlab_defaults

    build, classes = SETS[s.pick("scenes-small", "digits")]  # digits: no CIFAR to extract in a dry run
    sizes = s.pick((367, 101, 100, 360, 480), (8, 4, 4, 64, 96))
    data = build(s.work.parent / "data", *sizes[:2], *sizes[3:], n_test=sizes[2])
    epochs, img_size = s.pick(20, 1), s.pick(512, 64)
    overrides = s.pick({"epochs": epochs}, {"epochs": 1, "img_size": 64, "batch_size": 4, "width": 8})
    ours, facts = transferlab_defaults(data, classes, 0, s.work / "segment", device=s.device, **overrides)
    theirs, their_facts = smp_loop(data, classes, 0, epochs=epochs, size=img_size, device=s.device,
                                   batch=overrides.get("batch_size", 16))  # fmt: skip
    return {"epochs": epochs, "transferlab": {"test mIoU": round(ours["miou"], 4), **facts},
            "plain smp loop": {"test mIoU": round(theirs["miou"], 4), **their_facts}}  # fmt: skip


@item("detect")
def detect_item(s: Scale) -> dict:
    import warnings

    from detect_vs_torchvision import reference_rate, transferlab_rate
    from stylize_speed import SHARED
    from transferlab.tasks.detect.data import load_detection

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_detection(SHARED / "kangaroo.tar.gz")
    if s.dry:
        data.train, data.val = data.train.subset(list(range(12))), data.val.subset(list(range(2)))
    epochs, size = s.pick(4, 1), s.pick(320, 64)
    reference = reference_rate(data, epochs, s.pick(8, 0), device=s.device, size=size)
    ours, scores = transferlab_rate(data, epochs, s.work / "detect", device=s.device, size=size)
    return {"epochs": epochs, "torchvision train_one_epoch img/s": round(reference, 1),
            "transferlab img/s": round(ours, 1), "ratio": round(ours / reference, 2),
            "transferlab held-out mAP@.5": round(scores.get("map_50", float("nan")), 4)}  # fmt: skip


# ----------------------------------------------------------------------------- 5. serve


@item("serve")
def serve_item(s: Scale) -> dict:
    from serve_load import make_run, measure, photos

    args = argparse.Namespace(clients=s.pick(64, 2), requests=s.pick(20, 1))
    run, images = make_run(s.work / "serve"), photos()
    device = "cuda" if s.device.type == "cuda" else "cpu"
    on = measure(run, "torch", 8, args, images, device=device)
    if s.dry:  # the second server is the first's code at --max-batch-size 1: one start checks the item
        return {"batching on": on}
    off = measure(run, "torch", 1, args, images, device=device)
    return {"batching on": on, "batching off": off, "on / off req/s": round(on["req/s"] / off["req/s"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="every item for a few steps on the CPU")
    parser.add_argument("--only", default=",".join(ITEMS))
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    import timm
    import torchvision

    report = {"device": name, "dry_run": args.dry_run, "torch": torch.__version__,
              "torchvision": torchvision.__version__, "timm": timm.__version__, "items": {}}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"device: {name}, torch {torch.__version__}", flush=True)
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.only.split(","):
            started = time.perf_counter()
            try:
                (Path(tmp) / key).mkdir()
                row = ITEMS[key](Scale(args.dry_run, device, Path(tmp) / key))
            except Exception as exc:  # noqa: BLE001 (one failed item must not cost the others their lease time)
                failed = True
                row = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
            row["item_s"] = round(time.perf_counter() - started, 1)
            report["items"][key] = row
            print(json.dumps({key: {k: v for k, v in row.items() if k != "traceback"}}), flush=True)
            (args.out / "gpu_proof.json").write_text(json.dumps(report, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
