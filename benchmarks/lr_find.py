"""Is the LR finder's suggestion a good learning rate? Its suggestion for a task on a set against a
grid of learning rates each trained to the end with the same options: the grid's best rate, how far
the suggestion is from it (the issue's bar: within 3x), and the score of a run at the suggestion
(the bar: within 1 point of the grid's best), with the finder's own time.

Sets: ``cifar10`` and ``fashion`` (benchmarks/distill.py's: 200 training images a class, 50
validation, 100 test; scored on test), ``usps`` (USPS digits, 200 a class of the shared
digits archive, scored on its held-out part); ``membrane`` (segment: the ISBI slices at the CPU
defaults, scored on the 6 held-out slices).

    .venv/bin/python benchmarks/lr_find.py --task classify --set cifar10 [--grid 1e-4,3e-4,1e-3,3e-3,1e-2]
        [--epochs 5] [--img-size 64] [--seed 0] [--rule fall|steep|valley|minimum (default: the task's)]
    .venv/bin/python benchmarks/lr_find.py --task segment --set membrane [--grid 3e-4,1e-3,2e-3,5e-3,1e-2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, digit_folders, training_folder

if TYPE_CHECKING:
    from transferlab.engine.rate_finder import RateFinding

GRIDS = {"classify": "1e-4,3e-4,1e-3,3e-3,1e-2", "segment": "3e-4,1e-3,2e-3,5e-3,1e-2"}


def classify_set(name: str, runs: Path) -> tuple[Path, Path | None, dict]:
    """(DATA with train/ + val/, the test folder or None, fixed options) for a classify set."""
    if name == "usps":
        folders = digit_folders(ROOT / ".bench-cache")
        return folders["usps"], None, {"shots": 200}
    from distill import build

    data = build(name)
    return training_folder(data, runs / "data"), data / "test", {}


def cached_finding(folder: Path, rule: str) -> RateFinding | None:
    """The sweep of an earlier call with the same task, set and seed (a grid extended later, or another
    rule, reuses it), its suggestion read again under ``rule``."""
    from transferlab.engine.rate_finder import RateFinding, suggest

    saved = folder / "lr_find.json"
    if not saved.is_file():
        return None
    finding = RateFinding(**json.loads(saved.read_text()))
    finding.suggestion, finding.others = suggest(finding.rates, finding.smoothed, rule)
    finding.rule = rule
    return finding


def cached_score(out: Path, rate: float, train: Callable[[Path], float]) -> float:
    """A rate's score: trained once, then read from ``score.json`` in its run folder ``out``."""
    saved = out / "score.json"
    if saved.is_file():
        return json.loads(saved.read_text())["score"]
    began = time.perf_counter()
    score = train(out)
    seconds = time.perf_counter() - began
    saved.write_text(json.dumps({"score": score, "seconds": round(seconds, 1)}))
    print(f"  lr {rate:.3g}: {score:.4f} ({seconds:.0f} s)", flush=True)
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(GRIDS), default="classify")
    parser.add_argument("--set", choices=("cifar10", "fashion", "usps", "membrane"), default="cifar10")
    parser.add_argument("--grid", help="the learning rates trained to the end (default: the task's)")
    parser.add_argument("--epochs", type=int, default=5, help="classify's epochs (segment: its CPU defaults)")
    parser.add_argument("--img-size", type=int, default=64, help="classify's input size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rule", help="the finder's rule whose suggestion is trained (default: the task's)")
    parser.add_argument("--results", type=Path, default=ROOT / ".bench-cache" / "lr_find.jsonl")
    args = parser.parse_args()
    from transferlab import tune
    from transferlab.registry import TASKS
    from transferlab.tasks import classify, segment

    args.rule = args.rule or TASKS[args.task].recipe().finder_rule
    # a rate's cached score holds for these options only: another epoch count is another folder
    epochs = f"-epochs{args.epochs}" if args.task == "classify" and args.epochs != 5 else ""
    runs = ROOT / ".bench-cache" / "lr-find-runs" / f"{args.task}-{args.set}-seed{args.seed}{epochs}"
    if args.task == "classify":
        data, test, fixed = classify_set(args.set, runs)
        fixed |= {"epochs": args.epochs, "img_size": args.img_size, "seed": args.seed, "accelerator": "cpu"}

        def train(rate: float, out: Path) -> float:
            result = classify.train(data, out=out, lr=rate, **fixed)
            return classify.evaluate(result.run_dir, test)["accuracy"] if test else result.val_acc
    else:
        from segment_membrane import membrane

        data, fixed = membrane(ROOT / ".bench-cache"), {"seed": args.seed, "accelerator": "cpu"}

        def train(rate: float, out: Path) -> float:
            return segment.train(data, out=out, lr=rate, **fixed).scores["miou"]

    finding = cached_finding(runs / "finder", args.rule)
    if finding is None:
        finding = tune.lr_find(args.task, data, out=runs / "finder", rule=args.rule, **fixed)
    finder_seconds = finding.seconds
    print(f"{args.task} {args.set}: {finding.sentence()}; other rules {finding.others}", flush=True)
    grid = [float(r) for r in (args.grid or GRIDS[args.task]).split(",")]
    scores = {}
    for rate in [*grid, finding.suggestion]:
        scores[rate] = cached_score(runs / f"lr-{rate:.3g}", rate, lambda out, rate=rate: train(rate, out))
    best = max(grid, key=scores.__getitem__)
    factor = math.exp(abs(math.log(finding.suggestion / best)))
    at = scores[finding.suggestion]
    row = {"task": args.task, "set": args.set, "seed": args.seed, "rule": args.rule, "suggestion": finding.suggestion,
           "others": finding.others, "finder_seconds": round(finder_seconds, 1),
           "grid": {f"{r:g}": scores[r] for r in grid}, "best_rate": best, "best": scores[best],
           "at_suggestion": at, "factor_from_best": round(factor, 2),
           "points_below_best": round(100 * (scores[best] - at), 2)}  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
