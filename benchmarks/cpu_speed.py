"""Training throughput of every task on this CPU under each memory format and precision, through
the tasks' own Python API (the loop a user runs), in one process.

For each task at a realistic size it trains a few steps four times: contiguous fp32 (what
transferlab ran before it chose per device), channels_last fp32, contiguous bf16-mixed and
channels_last bf16-mixed, plus once with no flags (what the engine now chooses). Throughput is
images per second over the steady steps (the first ``WARMUP`` steps excluded), read from the
engine's own step boundaries (``TrainingSession.advance``).

    .venv/bin/python benchmarks/cpu_speed.py [--only classify224,gan32] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import SHARED, cifar10_folder, digit_folders
from transferlab.engine import session as engine_session

WARMUP = 3
COMBOS = {
    "fp32 contiguous (before)": {"precision": "32-true", "channels_last": False},
    "fp32 channels_last": {"precision": "32-true", "channels_last": True},
    "bf16 contiguous": {"precision": "bf16-mixed", "channels_last": False},
    "bf16 channels_last": {"precision": "bf16-mixed", "channels_last": True},
    "chosen (no flags)": {},
}


@contextlib.contextmanager
def step_clock() -> Iterator[list[float]]:
    """Times of every training step boundary the engine sees (each task calls advance once a step)."""
    times: list[float] = []
    original = engine_session.TrainingSession.advance

    def advance(self, info=None, steps: int = 1):
        if steps:
            times.append(time.perf_counter())
        return original(self, info, steps)

    engine_session.TrainingSession.advance = advance
    try:
        yield times
    finally:
        engine_session.TrainingSession.advance = original


def steady_rate(times: list[float], images_per_step: int, warmup: int = WARMUP) -> float:
    """Images/s between the ``warmup``-th step boundary and the last (a short run keeps what it has)."""
    steady = times[min(warmup, max(0, len(times) - 2)) :]
    span = steady[-1] - steady[0] if len(steady) > 1 else 0.0
    return images_per_step * (len(steady) - 1) / span if span > 0 else float("nan")


def cifar_subset(cache: Path, classes: tuple[str, ...], per_class: int) -> Path:
    """A class-folder copy (links) of ``per_class`` CIFAR-10 training images of each class."""
    root = cifar10_folder(cache)
    target = cache / f"cifar-{'-'.join(classes)}-{per_class}"
    if not target.is_dir():
        for name in classes:
            (target / name).mkdir(parents=True)
            for path in sorted((root / "train" / name).iterdir())[:per_class]:
                os.link(path, target / name / path.name)
    return target


def tasks(cache: Path) -> dict[str, tuple[int, Callable[[Path, dict], None]]]:
    """name -> (images per step, a function training a few steps into a folder with the given flags)."""
    from transferlab.tasks import autoencoder, classify, gan, translate
    from transferlab.tasks.stylize.feedforward import train_style

    pets = cifar_subset(cache, ("cat", "dog"), 160)
    photos = cifar_subset(cache, ("airplane", "automobile", "bird", "ship", "truck"), 200)
    digits = digit_folders(cache)
    style = SHARED / "styles" / "starry_night.jpg"

    def classify_at(size: int, batch: int, epochs: int, data: Path) -> Callable[[Path, dict], None]:
        return lambda out, flags: classify.fit(
            data, out=out, strategy="full", img_size=size, batch_size=batch, epochs=epochs, eval_every=epochs,
            accelerator="cpu", **flags,
        )  # fmt: skip

    def segment_run(out: Path, flags: dict) -> None:
        from segment_sets import SCENE_CLASSES, scenes
        from transferlab.tasks import segment

        data = scenes(cache, 240, 60, 360, 480, sizes=(0.07, 0.16), count=(4, 12), zipf=True)
        segment.train(data, out=out, classes=",".join(SCENE_CLASSES), img_size=192, batch_size=8, epochs=1,
                      eval_every=1000, accelerator="cpu", **flags)  # fmt: skip

    def adapt_run(out: Path, flags: dict) -> None:
        from transferlab.tasks.adapt import adapt

        adapt(digits["mnist"], digits["usps"], methods=["dann"], out=out, epochs=1, iters_per_epoch=40,
              accelerator="cpu", **flags)  # fmt: skip

    return {
        "classify 224 px (Lite0, batch 32)": (32, classify_at(224, 32, 2, pets)),
        "classify 64 px (Lite0, batch 64)": (64, classify_at(64, 64, 1, photos)),
        "gan 32 px (DCGAN width 32, batch 64)": (64, lambda out, flags: gan.train(
            digits["mnist"] / "train", out=out, arch="dcgan", img_size=32, width=32, steps=80, batch_size=64,
            eval_every=0, accelerator="cpu", **flags)),
        "translate 64 px (colorize, Lite0 U-Net, batch 16)": (16, lambda out, flags: translate.train(
            photos, out=out, task="colorize", steps=30, eval_every=0, accelerator="cpu", **flags)),
        "stylize train 256 px (batch 4)": (4, lambda out, flags: train_style(
            style, photos, out=out, steps=20, accelerator="cpu", **flags)),
        "autoencoder 32 px (resnet10t, batch 64)": (64, lambda out, flags: autoencoder.pretrain(
            photos, out=out, steps=40, accelerator="cpu", **flags)),
        "adapt 28 px (LeNet DANN, 2 x 64)": (128, adapt_run),
        "segment 192 px (Lite0 U-Net, batch 8)": (8, segment_run),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma list of task-name prefixes")
    parser.add_argument("--json", default="", help="write the table here too")
    parser.add_argument("--combos", default="", help="comma list of combination-name prefixes (default: all)")
    args = parser.parse_args()
    import torch

    from transferlab.engine.performance import native_bf16

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, native bf16: {native_bf16() or 'none'}")
    wanted = [w for w in args.only.split(",") if w]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", Path(__file__).resolve().parents[1] / ".bench-cache"))
        for name, (per_step, train) in tasks(cache).items():
            if wanted and not any(name.startswith(w) for w in wanted):
                continue
            results[name] = {}
            for label, flags in COMBOS.items():
                if args.combos and not any(label.startswith(c) for c in args.combos.split(",")):
                    continue
                out = Path(tmp) / f"{len(results)}-{len(results[name])}"
                with step_clock() as times:
                    train(out, flags)
                results[name][label] = steady_rate(times, per_step)
            base = results[name].get("fp32 contiguous (before)", next(iter(results[name].values())))
            cells = ", ".join(f"{k} {v:.1f} ({v / base:.2f}x)" for k, v in results[name].items())
            print(f"{name}: {cells}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
