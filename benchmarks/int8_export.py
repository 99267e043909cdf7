"""int8 ONNX export on this CPU: the accuracy it keeps and the time it saves. For each classifier
run: `transferlab export RUN --quantize int8` (calibrated on 300 of the run's training images,
scored on its held-out images against the fp32 ONNX model), then `transferlab benchmark RUN`
(torch fp32, ONNX fp32, ONNX int8 at batch 1 and 8, one after the other in this process).

Without ``--runs`` it makes the reference run first: Lite0 at 224 px on the distillation set of
CIFAR-10 (benchmarks/distill.py builds it), a linear probe (the pretrained body, a trained head:
minutes, not hours, at 224 px on a CPU).

    .venv/bin/python benchmarks/int8_export.py [--runs RUN,RUN] [--calibration 300] [--calibration-method minmax]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT


def reference_run() -> Path:
    from distill import build
    from transferlab.tasks import classify

    data = build("cifar10")
    run = ROOT / ".bench-cache" / "distill-runs" / "cifar10" / "lite0-224-linear"
    if not (run / "run.json").is_file():
        folder = run.parent / "data"
        classify.train(str(folder), out=run, strategy="linear", img_size=224, epochs=10, lr=1e-2)
    assert (data / "done").is_file()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="", help="comma-separated classifier runs (default: the reference run)")
    parser.add_argument("--calibration", default="300")
    parser.add_argument("--calibration-method", default="percentile", help="percentile (the default) or minmax")
    args = parser.parse_args()
    from transferlab.tasks.benchmark import benchmark
    from transferlab.tasks.quantize import quantize

    runs = [Path(r) for r in args.runs.split(",") if r] or [reference_run()]
    for run in runs:
        made = quantize(run, calibration=args.calibration, force=True, calibration_method=args.calibration_method)
        rows = benchmark(run, (1, 8))
        by = {r["runtime"]: r for r in rows}
        speedup = {n: by["ONNX fp32"][f"ms at batch {n}"] / by["ONNX int8"][f"ms at batch {n}"] for n in (1, 8)}
        record = {"run": str(run), "calibration_method": made.calibration_method, "measured_on": made.measured_on,
                  "metric": made.metric, "fp32": made.fp32_score,
                  "int8": made.int8_score, "drop_points": made.drop_points, "agreement": made.agreement,
                  "speedup_b1": round(speedup[1], 2), "speedup_b8": round(speedup[8], 2), "rows": rows}  # fmt: skip
        print(json.dumps(record), flush=True)
        print(f"| {run.name} | {made.fp32_score:.3f} | {made.int8_score:.3f} | {made.drop_points:+.2f} | "
              f"{by['ONNX fp32']['ms at batch 1']} | {by['ONNX int8']['ms at batch 1']} | {speedup[1]:.2f}x | "
              f"{speedup[8]:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
