"""The 100-shot faces (../shared/data/obama-100shot.zip) at 64 px on the CPU: scratch with
DiffAugment against a discriminator on frozen ImageNet Lite0 features (``--d-features lite0``),
each given the same training time (--minutes; the step count is each one's measured speed times
it), both with x-flips. FID/KID on Lite0 features against the 100 real images, 1,000 samples;
the two sample grids side by side in docs/images/gan-faces.png.

    .venv/bin/python benchmarks/gan_faces.py [--minutes 12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import ROOT, SHARED, side_by_side
from gan_transfer import steps_in

METHODS = {"scratch + DiffAugment": {}, "d-features lite0": {"d_features": "lite0"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=12.0, help="training time per method")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-cache")
    args = parser.parse_args()
    from transferlab.tasks import gan

    data = str(SHARED / "obama-100shot.zip")
    common = {"img_size": 64, "xflip": True, "accelerator": "cpu", "fid_features": "lite0", "fid_samples": 1000}
    rows, grids = [], []
    for name, extra in METHODS.items():
        slug = name.split()[0] if "lite0" not in name else "lite0"
        steps = steps_in(args.minutes, data, args.cache / f"faces-speed-{slug}", {**common, **extra, "eval_every": 0})
        start = time.perf_counter()
        result = gan.train(data, out=args.cache / f"faces-{slug}", steps=steps, eval_every=steps // 2,
                           sample_every=steps // 4, **common, **extra)  # fmt: skip
        seconds = time.perf_counter() - start
        last = result.evaluations[-1]
        rows.append((name, steps, result.best, last, seconds))
        grids.append(args.cache / f"faces-{slug}.png")
        shutil.copyfile(result.run_dir / "samples" / f"step-{steps:07d}.png", grids[-1])
        print(name, steps, result.best, f"{seconds / 60:.1f} min", flush=True)
    side_by_side(grids, list(METHODS), ROOT / "docs" / "images" / "gan-faces.png")
    print("\n| method (64 px, 100 images) | steps | wall time | best FID | its KID x1e3 | diversity (real) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, steps, best, last, seconds in rows:
        print(f"| {name} | {steps} | {seconds / 60:.1f} min | {best['fid']:.1f} | {best['kid'] * 1000:.1f} | "
              f"{last['diversity']:.1f} ({last['real_diversity']:.1f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
