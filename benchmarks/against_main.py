"""Training throughput of this tree against another commit (default: the one before the recipe
contract, #23), on the same machine, alternating the two so drift hits both alike.

Each side runs ``benchmarks/cpu_speed.py --combos chosen`` (the defaults a user gets) with its own
``src/`` first on PYTHONPATH; the table is the median of the rounds and the ratio this/other.

    .venv/bin/python benchmarks/against_main.py [--ref 6e5fd64] [--only classify 64,gan,translate] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_side(src: Path, only: str, out: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, str(ROOT / "benchmarks" / "cpu_speed.py"), "--only", only, "--combos", "chosen",
               "--json", str(out)]  # fmt: skip
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    return {name: next(iter(rates.values())) for name, rates in json.loads(out.read_text()).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="6e5fd64")
    parser.add_argument("--only", default="classify 64,gan,translate")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), args.ref], check=True, cwd=ROOT,
                       capture_output=True)  # fmt: skip
        try:
            rates: dict[str, dict[str, list[float]]] = {}
            for round_ in range(args.rounds):
                for side, src in (("other", other / "src"), ("this", ROOT / "src")):
                    got = run_side(src, args.only, Path(tmp) / f"{side}-{round_}.json")
                    for name, rate in got.items():
                        rates.setdefault(name, {}).setdefault(side, []).append(rate)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, capture_output=True)
    print(f"| task | {args.ref} (img/s) | this tree (img/s) | ratio |")
    print("| --- | --- | --- | --- |")
    for name, sides in rates.items():
        a, b = statistics.median(sides["other"]), statistics.median(sides["this"])
        print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
