"""Does a tuning study beat the defaults, and what does the pruner save? A `transferlab tune`
study of a fixed CPU budget on a set, then the best trial's run and the defaults' run (trial 0)
scored on test images no trial was tuned on; with ``--workers N`` the same number of trials by N
worker processes on one storage (SQLite, or ``--storage postgresql://...``), against one.

Sets: benchmarks/distill.py's ``cifar10`` and ``fashion`` (200 training images a class, 50
validation: the tuned part; 100 test a class: the score).

    .venv/bin/python benchmarks/tune_study.py --set cifar10 --minutes 30 [--seed 0] [--fixed "epochs=5;img_size=64"]
    .venv/bin/python benchmarks/tune_study.py --set fashion --workers 2 --trials 8 [--worker-threads 1] [--storage URL]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, parse_options
from lr_find import classify_set


def study(args: argparse.Namespace, data: Path, test: Path, fixed: dict) -> dict:
    """One study of ``--minutes``; the best and the defaults' runs scored on the test part."""
    from transferlab import tune
    from transferlab.tasks import classify

    root = ROOT / ".bench-cache" / "tune-runs" / f"{args.set}-seed{args.seed}-{args.minutes:g}min"
    started = time.perf_counter()
    result = tune.tune("classify", data, trials=10_000, timeout=args.minutes * 60, out=root, sampler_seed=args.seed,
                       study=f"{args.set}-{args.seed}", **fixed)  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    rows = list(csv.DictReader((root / "trials.csv").open()))
    complete = [float(r["seconds"]) for r in rows if r["state"] == "complete"]
    pruned = [float(r["seconds"]) for r in rows if r["state"] == "pruned"]
    saved = len(pruned) * statistics.mean(complete) - sum(pruned) if complete and pruned else 0.0
    defaults_run = root / "trial-0"
    return {
        "set": args.set, "seed": args.seed, "minutes": round(minutes, 1), "trials": len(rows),
        "complete": result.complete, "pruned": result.pruned, "pruner_saved_min": round(saved / 60, 1),
        "best_options": result.best_options, "best_val": result.best_value, "defaults_val": result.defaults_value,
        "best_test": classify.evaluate(root / "best", test)["accuracy"],
        "defaults_test": classify.evaluate(defaults_run, test)["accuracy"],
    }  # fmt: skip


#: The workers' space: options that leave a trial's cost alone (no resolution, strategy or epochs),
#: so that one worker and several train alike costly trials whatever each samples.
EVEN_SPACE = "lr: {low: 1.0e-4, high: 3.0e-2, log: true}\nweight_decay: {low: 1.0e-5, high: 1.0e-1, log: true}\n"


def workers(args: argparse.Namespace, data: Path, fixed: dict) -> dict:
    """``--trials`` trials by one worker, then by ``--workers`` (the cores shared out, or
    ``--worker-threads`` each), one study each; every trial must be recorded once."""
    import optuna

    from transferlab.tune.study import shown_url, storage_url

    space = ROOT / ".bench-cache" / "tune-runs" / "even-space.yaml"
    space.write_text(EVEN_SPACE)
    timings = {}
    for count in (1, args.workers):
        root = ROOT / ".bench-cache" / "tune-runs" / f"{args.set}-workers{count}-{time.strftime('%H%M%S')}"
        options = [f"--{k.replace('_', '-')}={v}" for k, v in fixed.items() if k != "accelerator"]
        command = [str(Path(sys.executable).parent / "transferlab"), "tune", "classify", str(data), "--trials",
                   str(args.trials), "--out", str(root), "--study", root.name, "--pruner", "none", "--space",
                   str(space), *options]  # fmt: skip
        if args.storage:
            command += ["--storage", args.storage]
        threads = args.worker_threads or max(1, (os.cpu_count() or 2) // count)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        started = time.perf_counter()
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL) for _ in range(count)]
        codes = [p.wait() for p in procs]
        seconds = time.perf_counter() - started
        trials = optuna.load_study(study_name=root.name, storage=storage_url(args.storage, root)).get_trials()
        kept = [t for t in trials if not t.user_attrs.get("surplus")]
        timings[count] = {
            "seconds": round(seconds, 1), "exit codes": codes,
            "complete": sum(t.state.name == "COMPLETE" for t in kept),
            "recorded once": len({t.user_attrs.get("folder") for t in kept}) == len(kept) == args.trials,
            "workers seen": len({t.user_attrs.get("pid") for t in kept}),
        }  # fmt: skip
    ratio = timings[args.workers]["seconds"] / timings[1]["seconds"]
    return {"set": args.set, "trials": args.trials, "storage": shown_url(args.storage or "sqlite"), "timings": timings,
            "time_ratio": round(ratio, 2), "cores": os.cpu_count(),
            "worker_threads": args.worker_threads or None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("cifar10", "fashion"), default="cifar10")
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fixed", default="epochs=5;img_size=64", help='options fixed for every trial: "K=V;..."')
    parser.add_argument("--workers", type=int, default=0, help="compare N workers against one on --trials trials")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument(
        "--worker-threads",
        type=int,
        default=0,
        help="threads of every worker (default: the cores shared out); 1: one worker per core",
    )
    parser.add_argument("--storage")
    parser.add_argument("--results", type=Path, default=ROOT / ".bench-cache" / "tune_study.jsonl")
    args = parser.parse_args()
    data, test, fixed = classify_set(args.set, ROOT / ".bench-cache" / "tune-runs" / args.set)
    fixed |= {"seed": 0, "accelerator": "cpu", **parse_options(args.fixed)}
    row = workers(args, data, fixed) if args.workers else study(args, data, test, fixed)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as handle:
        handle.write(json.dumps(row, default=str) + "\n")
    print(json.dumps(row, indent=1, default=str))


if __name__ == "__main__":
    main()
