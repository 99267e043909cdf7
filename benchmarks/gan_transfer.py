"""Transfer in generation on CPU: 100 USPS digits (10 a class) as the few-shot target of a
class-conditional DCGAN, one time budget (--minutes of training per run: each method's step
count is its measured speed times the budget; a frozen ImageNet network in the discriminator
costs many times a DCGAN step on a CPU), three ways, several seeds:

- ``scratch``: from random weights, with DiffAugment (color, translation, cutout);
- ``init+freeze-d``: fine-tuned from a GAN trained on MNIST (``--init``), lowest discriminator
  block frozen (``--freeze-d 1``, FreezeD), with the same DiffAugment;
- ``d-features``: a discriminator on frozen ImageNet Lite0 features (``--d-features lite0``).

Judged by a LeNet trained with ``transferlab classify`` on all 7,000 USPS training images: FID/KID
on its features against the 1,000 held-out USPS images, class consistency of 1,000 samples, and a
sample grid per method (the last seed) in ``OUT/grid-<method>.png``.

    .venv/bin/python benchmarks/gan_transfer.py [--minutes 1.5] [--seeds 0,1,2] [--source RUN]
    .venv/bin/python benchmarks/gan_transfer.py --steps 540 --seeds 0   # equal steps, not equal time
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import ROOT, digit_folders, digit_judge, judge_generator, real_pixels, side_by_side


def methods(source: Path) -> dict[str, dict]:
    return {
        "scratch": {},
        "init+freeze-d": {"init": str(source), "freeze_d": 1},
        "d-features": {"d_features": "lite0"},
    }


def source_run(folders: dict[str, Path], out: Path) -> Path:
    """The source GAN: MNIST, conditional, 32 px, the CPU defaults (as ``gan_digits.py`` trains it)."""
    from transferlab.tasks import gan

    if not (out / "run.json").is_file():
        gan.train(str(folders["mnist"] / "train"), conditional=True, img_size=32, out=out, accelerator="cpu")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--minutes", type=float, default=1.5, help="training time per run")
    parser.add_argument("--steps", type=int, default=0, help="the same step count for every method (not --minutes)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default="", help="comma-separated methods (default: all)")
    parser.add_argument("--source", type=Path, default=None, help="a conditional MNIST GAN run (default: train one)")
    args = parser.parse_args()
    from shutil import copyfile

    folders = digit_folders(args.cache)
    judge = digit_judge(folders["usps"], args.cache / "judge-usps")
    source = args.source or source_run(folders, args.cache / "gan-mnist")
    real = real_pixels(folders["usps"] / "val")
    root = args.cache / "gan-transfer"
    table = {}
    from transferlab.tasks import gan

    chosen = methods(source)
    wanted = [m for m in chosen if not args.only or m in args.only.split(",")]
    common = {"conditional": True, "img_size": 32, "eval_every": 0, "accelerator": "cpu"}
    for method in wanted:
        options = {**common, **chosen[method]}
        steps = args.steps or steps_in(args.minutes, str(folders["usps100"]), root / f"speed-{method}", options)
        rows, suffix = [], f"-{steps}steps" if args.steps else ""
        for seed in [int(s) for s in args.seeds.split(",")]:
            out = root / f"{method}-{seed}{suffix}"
            start = time.perf_counter()
            if not (out / "run.json").is_file():
                gan.train(str(folders["usps100"]), out=out, steps=steps, sample_every=steps, seed=seed,
                          **common, **chosen[method])  # fmt: skip
            row = {**judge_generator(out, judge, real, seed=seed), "seconds": time.perf_counter() - start}
            rows.append({**row, "steps": steps})
            print(method, seed, {k: round(v, 4) for k, v in rows[-1].items()}, flush=True)
        copyfile(out / "samples" / f"step-{steps:07d}.png", root / f"grid-{method}{suffix}.png")
        table[method] = rows
    shown = [m for m in ("scratch", "init+freeze-d") if (root / f"grid-{m}.png").is_file()]
    side_by_side([root / f"grid-{m}.png" for m in shown], shown, ROOT / "docs" / "images" / "gan-transfer-usps.png")
    print(
        f"\n| method | steps | FID | KID x1e3 | class consistency "
        f"| diversity (real {rows[0]['real_diversity']:.2f}) | s/run |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method, rows in table.items():
        cells = [mean_std([r[k] * (1000 if k == "kid" else 1) for r in rows], pct=k == "consistency")
                 for k in ("fid", "kid", "consistency", "diversity")]  # fmt: skip
        print(
            f"| {method} | {rows[0]['steps']} | "
            + " | ".join(cells)
            + f" | {statistics.mean(r['seconds'] for r in rows):.0f} |"
        )


def steps_in(minutes: float, data: str, out: Path, options: dict) -> int:
    """The steps this method trains in ``minutes`` here: the training loop's time for 20 steps
    (``GanResult.loop_seconds``: loading the data and building the networks, long for a large
    dataset, do not count), after a 5-step warm-up."""
    from shutil import rmtree

    from transferlab.tasks import gan

    common = {"sample_every": 0, "checkpoint_every": 0, **options}
    gan.train(data, out=out / "warm-up", steps=5, **common)
    timed = gan.train(data, out=out / "timed", steps=20, **common)
    rmtree(out)
    return max(20, round(minutes * 60 * 20 / timed.loop_seconds / 10) * 10)


def mean_std(values: list[float], pct: bool = False) -> str:
    scale, unit = (100, "%") if pct else (1, "")
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values) * scale:.1f}{unit} ± {sd * scale:.1f}"


if __name__ == "__main__":
    main()
