"""Detection by transfer on the kangaroo photos (164 photos, Pascal VOC boxes, one class; one is a
truncated JPEG and is skipped): scratch vs frozen vs full with the ImageNet Lite0 backbone, FCOS
at the CPU default 320 px and batch 8, one budget of epochs for all, three seeds each; COCO mAP@.5
and mAP@[.5:.95] on the 33 held-out photos (a seeded 20% split), mean +- std.

    .venv/bin/python benchmarks/detect_kangaroo.py [--epochs 12] [--seeds 0,1,2] [--strategies scratch,frozen,full]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, SHARED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default="scratch,frozen,full")
    args = parser.parse_args()
    from transferlab.tasks import detect
    from transferlab.tasks.detect.data import load_detection

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the one truncated photo
        rows, budget = [], {"epochs": args.epochs, "accelerator": "cpu"}
        with tempfile.TemporaryDirectory() as tmp:
            for strategy in args.strategies.split(","):
                scores, seconds = [], []
                for seed in map(int, args.seeds.split(",")):
                    data = load_detection(SHARED / "kangaroo.tar.gz", seed=seed)  # the split of this seed
                    started = time.perf_counter()
                    result = detect.train(data, out=Path(tmp) / f"{strategy}-{seed}", strategy=strategy, seed=seed,
                                          **budget)  # fmt: skip
                    seconds.append(time.perf_counter() - started)
                    scores.append(result.scores)
                    s = result.scores
                    print(f"{strategy} seed {seed}: mAP@.5 {s['map_50']:.3f}, mAP@[.5:.95] {s['map']:.3f}, "
                          f"recall {s['recall']:.3f}, {seconds[-1]:.0f} s",
                          flush=True)  # fmt: skip
                    if seed == 0 and strategy == "full":  # the README's picture, as JPEG
                        from PIL import Image

                        picture = ROOT / "docs" / "images" / "detect-kangaroo-full.jpg"
                        Image.open(result.run_dir / "detections.png").convert("RGB").save(picture, quality=85)
                spread = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
                cells = [f"{statistics.mean(v):.3f} +- {spread(v):.3f}"
                         for v in ([s["map_50"] for s in scores], [s["map"] for s in scores])]  # fmt: skip
                rows.append(f"| {strategy} | {cells[0]} | {cells[1]} | {statistics.mean(seconds):.0f} |")
    print(f"budget: FCOS, 320 px, batch 8, {args.epochs} epochs")
    print("| strategy | held-out mAP@.5 | mAP@[.5:.95] | seconds per run |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
