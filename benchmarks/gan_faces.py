"""The 100-shot faces (../shared/data/obama-100shot.zip) at 64 px on the CPU, three ways, each
given the same training time (--minutes; the step count is each one's measured speed times it),
all with x-flips and DiffAugment:

- ``scratch``: from random weights;
- ``lite0``: a discriminator on frozen ImageNet Lite0 features (``--d-features lite0``);
- ``init``: fine-tuned (``--init``, ``--freeze-d 1``) from an unconditional GAN trained on the
  45,000 CIFAR-10 training images at 64 px for --source-minutes (no face set of that size is
  offline here, so the source is generic natural images).

FID/KID on Lite0 features against the 100 real images, 1,000 samples; the sample grids side by
side in docs/images/gan-faces.png.

    .venv/bin/python benchmarks/gan_faces.py [--minutes 7] [--only scratch,lite0,init]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import ROOT, SHARED, cifar10_folder, side_by_side
from gan_transfer import steps_in

LABELS = {"scratch": "scratch + DiffAugment", "lite0": "d-features lite0", "init": "init CIFAR-10 + freeze-d 1"}


def cifar_source(cache: Path, minutes: float, common: dict) -> Path:
    """An unconditional 64 px GAN on the CIFAR-10 training images (trained once, then cached)."""
    from transferlab.tasks import gan

    out = cache / "faces-source-cifar10"
    if (out / "run.json").is_file():
        return out
    data = str(cifar10_folder(cache) / "train")
    options = {**common, "fid_features": "none", "eval_every": 0}
    steps = steps_in(minutes, data, cache / "faces-speed-source", options)
    gan.train(data, out=out, steps=steps, sample_every=steps, **options)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=7.0, help="training time per method")
    parser.add_argument("--source-minutes", type=float, default=7.0, help="training time of the CIFAR-10 source")
    parser.add_argument("--only", default="scratch,lite0,init", help="comma-separated methods")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-cache")
    args = parser.parse_args()
    from transferlab.tasks import gan

    data = str(SHARED / "obama-100shot.zip")
    common = {"img_size": 64, "xflip": True, "accelerator": "cpu", "fid_features": "lite0", "fid_samples": 1000}
    wanted = args.only.split(",")
    methods = {"scratch": {}, "lite0": {"d_features": "lite0"}}
    if "init" in wanted:
        methods["init"] = {"init": str(cifar_source(args.cache, args.source_minutes, common)), "freeze_d": 1}
    rows = []
    for slug, extra in ((s, e) for s, e in methods.items() if s in wanted):
        name = LABELS[slug]
        steps = steps_in(args.minutes, data, args.cache / f"faces-speed-{slug}", {**common, **extra, "eval_every": 0})
        start = time.perf_counter()
        result = gan.train(data, out=args.cache / f"faces-{slug}", steps=steps, eval_every=steps // 2,
                           sample_every=steps // 4, **common, **extra)  # fmt: skip
        seconds = time.perf_counter() - start
        last = result.evaluations[-1]
        rows.append((name, steps, result.best, last, seconds))
        shutil.copyfile(result.run_dir / "samples" / f"step-{steps:07d}.png", args.cache / f"faces-{slug}.png")
        print(name, steps, result.best, f"{seconds / 60:.1f} min", flush=True)
    shown = [slug for slug in LABELS if (args.cache / f"faces-{slug}.png").is_file()]
    side_by_side(
        [args.cache / f"faces-{s}.png" for s in shown], [LABELS[s] for s in shown], ROOT / "docs/images/gan-faces.png"
    )
    print("\n| method (64 px, 100 images) | steps | wall time | best FID | its KID x1e3 | diversity (real) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, steps, best, last, seconds in rows:
        print(f"| {name} | {steps} | {seconds / 60:.1f} min | {best['fid']:.1f} | {best['kid'] * 1000:.1f} | "
              f"{last['diversity']:.1f} ({last['real_diversity']:.1f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
