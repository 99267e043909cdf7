"""The GPU proof's script (benchmarks/gpu_proof.sh) runs every item for a few steps on the CPU, so
it is known to work before a GPU lease is spent on it. One process for every item: each start of
the script pays its imports again (about 8 s on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


ITEMS = "classify,gan,stylize,segment,detect,serve"


@pytest.mark.heavy(75)
@pytest.mark.timeout(600)
def test_the_gpu_proof_dry_run_measures_every_item(shared_data, tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "out"), "TRANSFERLAB_SHARED_DATA": str(shared_data)}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_proof.sh"), "--dry-run", "--only", ITEMS],
                          env=env, capture_output=True, text=True, timeout=480)  # fmt: skip
    report = json.loads((tmp_path / "out" / "gpu_proof.json").read_text())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert report["dry_run"] and list(report["items"]) == ITEMS.split(",")
    rows = report["items"]
    for name, row in rows.items():
        assert "error" not in row, (name, row)
    checks = {
        "classify": lambda r: r["plain timm loop"]["steady_img_s"] > 0 and r["throughput ratio (goal >= 1.3)"] > 0,
        "gan": lambda r: r["speed-up (goal >= 2)"] > 0 and r["steps"] >= 1,
        "stylize": lambda r: r["tutorial VGG19 s"] > 0 and r["feed-forward batched img/s (goal >= 400)"] > 0,
        "segment": lambda r: 0 <= r["transferlab"]["test mIoU"] <= 1 and r["plain smp loop"]["epochs"] == 1,
        "detect": lambda r: r["torchvision train_one_epoch img/s"] > 0 and r["transferlab img/s"] > 0,
        "serve": lambda r: r["batching on"]["failed"] == 0 and r["batching on"]["req/s"] > 0,
    }
    for name, row in rows.items():
        assert checks[name](row), (name, row)
