"""Does ``torch.compile`` pay on the CPU? Two 5-epoch classify runs on the same split, with and
without ``--compile``, wall time from the call to the trained model (compilation included).
``--compile`` stays off by default unless the compiled run finishes sooner.

    cd benchmarks && ../.venv/bin/python cpu_compile.py [--size 64] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from cpu_speed import cifar_subset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    from transferlab.tasks import classify

    cache = Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", Path(__file__).resolve().parents[1] / ".bench-cache"))
    photos = cifar_subset(cache, ("airplane", "automobile", "bird", "ship", "truck"), 200)
    with tempfile.TemporaryDirectory() as tmp:
        for compiled in (False, True):
            start = time.perf_counter()
            result = classify.fit(photos, out=Path(tmp) / str(compiled), strategy="full", img_size=args.size,
                                  epochs=args.epochs, compile=compiled)  # fmt: skip
            wall = time.perf_counter() - start
            epochs = ", ".join(f"{row['seconds']:.1f}" for row in result.history)
            print(f"compile={compiled}: {wall:.1f} s wall, val acc {result.val_acc:.1%}, epochs (s): {epochs}")


if __name__ == "__main__":
    main()
