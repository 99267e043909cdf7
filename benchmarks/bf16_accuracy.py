"""Does bf16-mixed keep each task's accuracy on this CPU? The same runs in 32-bit and in bf16-mixed
(memory format as the engine chooses), over several seeds: bf16 holds where the difference of the
means is within the seed-to-seed spread of the 32-bit runs (their standard deviation, or the
bf16 runs' where that is larger). ``engine/performance.py`` defaults to bf16 only where it held.

    cd benchmarks && ../.venv/bin/python bf16_accuracy.py [--only classify,gan] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import SHARED, digit_folders
from cpu_speed import cifar_subset
from vs_fastai import photo_set


def studies(cache: Path) -> dict[str, tuple[str, bool, Callable[[Path, int, str], float]]]:
    """name -> (metric, higher is better, run(out, seed, precision) -> metric)."""
    from transferlab.tasks import autoencoder, classify, gan
    from transferlab.tasks.adapt import adapt
    from transferlab.tasks.stylize.feedforward import train_style

    three = photo_set(cache, ["airplane", "bird", "cat"], 100, 100)  # 300 training, 300 validation photos
    photos = cifar_subset(cache, ("airplane", "automobile", "bird", "ship", "truck"), 200)
    digits = digit_folders(cache)
    style = SHARED / "styles" / "starry_night.jpg"

    def classify_run(out: Path, seed: int, precision: str) -> float:
        result = classify.fit(three, out=out, strategy="full", img_size=224, batch_size=32, epochs=3, eval_every=3,
                              seed=seed, precision=precision)  # fmt: skip
        return result.history[-1]["val_acc"]

    def gan_run(out: Path, seed: int, precision: str) -> float:
        result = gan.train("digits", out=out, arch="dcgan", img_size=32, width=32, steps=600, eval_every=600,
                           fid_samples=500, fid_features="lite0", seed=seed, precision=precision)  # fmt: skip
        return result.evaluations[-1]["fid"]

    def stylize_run(out: Path, seed: int, precision: str) -> float:
        result = train_style(style, photos, out=out, steps=100, train_size=128, seed=seed, precision=precision)
        return statistics.mean(result.losses[-20:])

    def autoencoder_run(out: Path, seed: int, precision: str) -> float:
        result = autoencoder.pretrain(photos, out=out, steps=300, seed=seed, precision=precision)
        return statistics.mean(result.losses[-20:])

    def adapt_run(out: Path, seed: int, precision: str) -> float:
        rows = adapt(digits["mnist"], digits["usps"], methods=["dann"], seeds=[seed], out=out, epochs=1,
                     iters_per_epoch=300, precision=precision)  # fmt: skip
        return next(r for r in rows if r["method"] == "dann")["target acc %"]

    return {
        "classify 224 px (Lite0 full, 3 CIFAR classes, 3 epochs)": ("val accuracy", True, classify_run),
        "gan 32 px (conditional DCGAN, digits, 600 steps)": ("FID (Lite0)", False, gan_run),
        "stylize train 128 px (100 steps)": ("final loss", False, stylize_run),
        "autoencoder 32 px (resnet10t, 300 steps)": ("final loss", False, autoencoder_run),
        "adapt 28 px (LeNet DANN, MNIST->USPS, 300 steps)": ("target accuracy", True, adapt_run),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    cache = Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", Path(__file__).resolve().parents[1] / ".bench-cache"))
    seeds = [int(s) for s in args.seeds.split(",")]
    wanted = [w for w in args.only.split(",") if w]
    with tempfile.TemporaryDirectory() as tmp:
        for name, (metric, _, run) in studies(cache).items():
            if wanted and not any(name.startswith(w) for w in wanted):
                continue
            values = {
                precision: [run(Path(tmp) / f"{name[:8]}-{precision}-{seed}", seed, precision) for seed in seeds]
                for precision in ("32-true", "bf16-mixed")
            }
            mean = {p: statistics.mean(v) for p, v in values.items()}
            spread = max(statistics.stdev(v) if len(v) > 1 else 0.0 for v in values.values())
            holds = abs(mean["bf16-mixed"] - mean["32-true"]) <= spread
            cells = "; ".join(
                f"{p}: {mean[p]:.4g} +- {statistics.stdev(v) if len(v) > 1 else 0:.2g} "
                f"({', '.join(f'{x:.4g}' for x in v)})"
                for p, v in values.items()
            )
            print(f"{name}, {metric}: {cells}; bf16 {'holds' if holds else 'does NOT hold'}", flush=True)


if __name__ == "__main__":
    main()
