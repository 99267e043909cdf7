"""What makes `segment train` good on many-class scenes: one factor at a time from a base setting,
the same step budget for each (more pixels a step cost time, which the minutes column shows), on the
sets of ``segment_sets.py`` (360x480 scenes like a street-scene benchmark's). Each row: the factor,
its setting, held-out mIoU, class-average accuracy, pixel accuracy, the classes below 0.1 IoU, and
the minutes the run took. Rows are appended as JSON lines to ``--results``.

    .venv/bin/python benchmarks/segment_factors.py --set digits [--factors base,lr2e-3,...] [--steps 300]
    .venv/bin/python benchmarks/segment_factors.py --table   # the markdown tables of every row so far

``--base "KEY=VALUE;..."`` changes the base (e.g. to study around the new defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import unet_variants  # registers the decoder study's U-Nets
from common import ROOT, parse_options
from segment_sets import SETS

#: The factors: name -> options changed from the base (segment train's options, Python names).
FACTORS: dict[str, dict[str, object]] = {
    "base": {},
    "lr2e-3": {"lr": 2e-3},
    "lr4e-3": {"lr": 4e-3},
    "constant": {"schedule": "constant"},
    "cosine": {"schedule": "cosine"},  # the base is constant on a CPU since 2026-12-06
    "enc0.3": {"encoder_lr_mult": 0.3},
    "frame": {"crop": "frame"},
    "whole": {"crop": "frame", "scales": "1,1"},
    "scales0.75-1.25": {"scales": "0.75,1.25"},
    "scales1-1.5": {"scales": "1,1.5"},
    "size256": {"img_size": 256},
    "size160": {"img_size": 160},
    "balanced": {"class_weights": "balanced"},
    "ce": {"loss": "ce"},
    "width64": {"width": 64},
    "width16": {"width": 16},
    "bf16": {"precision": "bf16-mixed"},
    "wd1e-2": {"weight_decay": 1e-2},
    **{name: {"decoder": name} for name in unet_variants.VARIANTS},
    "batch16": {"batch_size": 16},
    "batch4": {"batch_size": 4},
}
BASE = {"img_size": 192, "batch_size": 8, "precision": "32-true"}
TRAIN = 240  # training scenes a run (60 held out); rows written before "steps" was kept all used it


def run_one(set_name: str, factor: str, base: dict, steps: int, n_train: int, seed: int, tmp: Path) -> dict:
    from transferlab.tasks import segment

    build, classes = SETS[set_name]
    data = build(Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache")), n_train, 60, 360, 480)
    options = {**BASE, **base, **FACTORS[factor]}
    options["epochs"] = max(1, steps // -(-n_train // int(options["batch_size"])))  # the same steps a run
    started = time.perf_counter()
    result = segment.train(data, out=tmp / f"{set_name}-{factor}-{seed}", classes=",".join(classes), seed=seed,
                           accelerator="cpu", eval_every=1000, max_steps=0, **options)  # fmt: skip
    s = result.scores
    return {
        "set": set_name,
        "factor": factor,
        "options": options,
        "seed": seed,
        "steps": options["epochs"] * -(-n_train // int(options["batch_size"])),
        "miou": s["miou"],
        "class_accuracy": s["class_accuracy"],
        "pixel_accuracy": s["pixel_accuracy"],
        "per_class": {c["class"]: round(c["iou"], 3) for c in s["per_class"]},
        "minutes": (time.perf_counter() - started) / 60,
        "threads": int(os.environ.get("OMP_NUM_THREADS", 0)),
    }


def table(results: Path) -> None:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    for set_name in dict.fromkeys(r["set"] for r in rows):
        print(f"\n{set_name}\n")
        print("| steps | factor | setting | mIoU | class acc. | pixel acc. | classes < 0.1 IoU | min |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in (r for r in rows if r["set"] == set_name):
            setting = ", ".join(f"{k}={v}" for k, v in r["options"].items() if k not in ("epochs",)) or "-"
            blind = ", ".join(f"{c} {v:.2f}" for c, v in r["per_class"].items() if v < 0.1) or "none"
            steps = r.get("steps") or r["options"]["epochs"] * -(-TRAIN // int(r["options"]["batch_size"]))
            print(f"| {steps} | {r['factor']} | {setting} | {r['miou']:.3f} | {r['class_accuracy']:.3f} | "
                  f"{r['pixel_accuracy']:.3f} | {blind} | {r['minutes']:.1f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS))
    parser.add_argument("--factors", default=",".join(FACTORS))
    parser.add_argument("--base", default="", help="KEY=VALUE;... changed from the base for every row")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train", type=int, default=TRAIN, help="training scenes (60 held out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=ROOT / ".bench-cache" / "segment_factors.jsonl")
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        table(args.results)
        return
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors.split(","):
            row = run_one(args.set, factor, parse_options(args.base), args.steps, args.train, args.seed, Path(tmp))
            row["base"] = args.base
            with args.results.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
            print(f"{args.set} {factor}: mIoU {row['miou']:.3f}, class acc {row['class_accuracy']:.3f}, "
                  f"{row['minutes']:.1f} min", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
