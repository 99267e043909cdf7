"""Segmentation by transfer on the ISBI 2012 membranes (30 EM slices of 512x512, binary masks):
scratch vs frozen vs full, the ImageNet Lite0 encoder, the CPU defaults `segment train` chooses
(192 px crops, 30 epochs, batch 8), three seeds each; mIoU and pixel accuracy on the six held-out
slices at full resolution, mean +- std.

    .venv/bin/python benchmarks/segment_membrane.py [--seeds 0,1,2] [--strategies scratch,frozen,full] [--img-size N]
        [--options "KEY=VALUE;..."]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import ROOT, SHARED, parse_options


def membrane(cache: Path) -> Path:
    target = cache / "membrane"
    if not (target / "images").is_dir():
        with tarfile.open(SHARED / "membrane.tar.gz") as archive:
            archive.extractall(cache, filter="data")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--strategies", default="scratch,frozen,full")
    parser.add_argument("--img-size", type=int, help="another crop side than the default's")
    parser.add_argument("--options", default="", help='segment train options besides the defaults: "KEY=VALUE;..."')
    args = parser.parse_args()
    size = {} if args.img_size is None else {"img_size": args.img_size}
    size |= parse_options(args.options)
    from transferlab.tasks import segment

    data = membrane(Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies.split(","):
            scores, seconds = [], []
            for seed in map(int, args.seeds.split(",")):
                started = time.perf_counter()
                result = segment.train(data, out=Path(tmp) / f"{strategy}-{seed}", strategy=strategy, seed=seed,
                                       accelerator="cpu", **size)  # fmt: skip
                seconds.append(time.perf_counter() - started)
                scores.append(result.scores)
                print(f"{strategy} seed {seed}: mIoU {result.scores['miou']:.3f}, pixel accuracy "
                      f"{result.scores['pixel_accuracy']:.3f}, {seconds[-1]:.0f} s", flush=True)  # fmt: skip
                if seed == 0 and strategy == "full" and not size:  # the README's picture, as JPEG
                    from PIL import Image

                    picture = ROOT / "docs" / "images" / "segment-membrane-full.jpg"
                    Image.open(result.run_dir / "overlays.png").convert("RGB").save(picture, quality=85)
            miou = [s["miou"] for s in scores]
            accuracy = [s["pixel_accuracy"] for s in scores]
            spread = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731
            cells = [f"{statistics.mean(v):.3f} +- {spread(v):.3f}" for v in (miou, accuracy)]
            rows.append(f"| {strategy} | {cells[0]} | {cells[1]} | {statistics.mean(seconds):.0f} |")
    print("| strategy | held-out mIoU | pixel accuracy | seconds per run |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
