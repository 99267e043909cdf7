"""Digits that read as digits: ``transferlab gan train MNIST --conditional --img-size 32`` with no
other flag, timed end to end, then judged by a pretrained network: a LeNet trained with
``transferlab classify`` on real MNIST labels reads 1,000 generated images (100 a class) and
says how many show the class that was asked for; FID/KID on its features against the 2,000
held-out MNIST images, and the samples' diversity next to the real images'.

    .venv/bin/python benchmarks/gan_digits.py [--cache .bench-cache] [-- EXTRA GAN FLAGS]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import ROOT, digit_folders, digit_judge, judge_generator, real_pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("extra", nargs="*", help="more `gan train` flags (none: the issue's command)")
    args = parser.parse_args()
    folders = digit_folders(args.cache)
    judge = digit_judge(folders["mnist"], args.cache / "judge-mnist")
    out = args.out or args.cache / "gan-mnist"
    command = [str(Path(sys.executable).parent / "transferlab"), "gan", "train", str(folders["mnist"] / "train"),
               "--conditional", "--img-size", "32", "--out", str(out), *args.extra]  # fmt: skip
    print("$", " ".join(command[1:]), flush=True)
    start = time.perf_counter()
    env = {**os.environ, "TRANSFERLAB_QUIET": "0"}
    subprocess.run(command, check=True, env=env)
    seconds = time.perf_counter() - start
    scores = judge_generator(out, judge, real_pixels(folders["mnist"] / "val"))
    print(f"wall time {seconds / 60:.1f} min on {os.cpu_count()} CPU core(s)")
    print(
        f"class consistency {scores['consistency']:.1%} (coverage {scores['coverage']:.0%}); "
        f"FID {scores['fid']:.2f}, KID {scores['kid'] * 1000:.2f}e-3 on the LeNet's features; "
        f"diversity {scores['diversity']:.2f} (real {scores['real_diversity']:.2f})"
    )


if __name__ == "__main__":
    main()
