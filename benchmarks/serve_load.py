"""Load on `transferlab serve`: concurrent clients on loopback against a Lite0 classifier run.

For each runtime (torch, onnx) and with dynamic batching on and off, a fresh server process is
started on 127.0.0.1 and CLIENTS concurrent clients send REQUESTS requests each (one photo per
request, multipart). Printed: requests/s, p50/p99 latency, failed requests, and the resident
memory of the server's process tree before and after the load, then the batching on/off ratio.

    .venv/bin/python benchmarks/serve_load.py [--clients 64] [--requests 20]

The load generator runs on the same machine (and cores) as the server; every number is from
this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_serve import Server  # the tests' real-process server helper

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field", "immunohistochemistry")


def make_run(root: Path) -> Path:
    """A 10-class classifier on ImageNet EfficientNet-Lite0 at its pretrained 224 px."""
    from transferlab import backbones
    from transferlab.runs import save_run

    model, config, _ = backbones.create("tf_efficientnet_lite0", num_classes=10)
    return save_run(
        root / "lite0",
        task="classify",
        state_dict=model.state_dict(),
        model={"kind": "timm-classifier", "backbone": "tf_efficientnet_lite0", "num_classes": 10},
        class_names=[f"class{i}" for i in range(10)],
        preprocessing=config,
    )


def photos() -> list[bytes]:
    encoded = []
    for name in PHOTOS:
        buffer = io.BytesIO()
        Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((256, 256)).save(buffer, "JPEG", quality=90)
        encoded.append(buffer.getvalue())
    return encoded


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack += children.get(current, [])
        try:
            status = (Path("/proc") / str(current) / "status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


async def load(url: str, images: list[bytes], clients: int, requests: int) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    failures = 0

    async def client(index: int) -> None:
        nonlocal failures
        async with httpx.AsyncClient(timeout=120) as http:
            for r in range(requests):
                photo = images[(index + r) % len(images)]
                start = time.perf_counter()
                try:
                    answer = await http.post(url, files=[("files", ("p.jpg", photo, "image/jpeg"))])
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - start)
                failures += not ok

    start = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies, failures, time.perf_counter() - start


def model_alone(run: Path, batch: int) -> dict:
    """Images/s of the served model itself (torch, channels_last, as the worker runs it) at batch
    1 and at ``batch``: the most that batching can gain on this machine."""
    import torch

    from transferlab import backbones
    from transferlab.runs import read_run

    model = backbones.from_run(read_run(run)).model.eval().to(memory_format=torch.channels_last)
    rates = {}
    with torch.inference_mode():
        for size in (1, batch):
            x = torch.randn(size, 3, 224, 224).contiguous(memory_format=torch.channels_last)
            model(x)
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < 5:
                model(x)
                count += size
            rates[size] = count / (time.perf_counter() - start)
    return {"batch 1 img/s": round(rates[1], 1), f"batch {batch} img/s": round(rates[batch], 1)}


def measure(
    run: Path, runtime: str, batch: int, args: argparse.Namespace, images: list[bytes], device: str = "auto"
) -> dict:  # fmt: skip
    server = Server(str(run), "--runtime", runtime, "--max-batch-size", str(batch), "--batch-timeout-ms", "5",
                    "--accelerator", device)  # fmt: skip
    try:
        url = f"{server.url}/models/lite0/predict"
        asyncio.run(load(url, images, args.clients, 2))  # warm-up at full concurrency: allocator, pools
        before = tree_rss_mb(server.proc.pid)
        latencies, failures, seconds = asyncio.run(load(url, images, args.clients, args.requests))
        after = tree_rss_mb(server.proc.pid)
    finally:
        server.stop()
    ms = np.array(latencies) * 1000
    return {
        "runtime": runtime,
        "batching": f"on (max {batch})" if batch > 1 else "off",
        "requests": len(latencies),
        "failed": failures,
        "req/s": round(len(latencies) / seconds, 1),
        "p50 ms": round(float(np.percentile(ms, 50)), 1),
        "p99 ms": round(float(np.percentile(ms, 99)), 1),
        "RSS before MB": round(before),
        "RSS after MB": round(after),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--runtimes", default="torch,onnx")
    args = parser.parse_args()
    os.environ.setdefault("TRANSFERLAB_QUIET", "1")
    with tempfile.TemporaryDirectory() as tmp:
        run, images = make_run(Path(tmp)), photos()
        alone = model_alone(run, args.max_batch_size)
        print("the model alone (torch, channels_last, in this process):", alone, flush=True)
        rows = []
        for runtime in args.runtimes.split(","):
            for batch in (args.max_batch_size, 1):
                rows.append(measure(run, runtime, batch, args, images))
                print(rows[-1], flush=True)
    print("\n| " + " | ".join(rows[0]) + " |\n|" + " --- |" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    for on, off in zip(rows[::2], rows[1::2]):
        print(f"{on['runtime']}: batching on / off = {on['req/s'] / off['req/s']:.2f}x requests/s")
    one, many = alone.values()
    print(f"the model alone: batch {args.max_batch_size} / batch 1 = {many / one:.2f}x img/s")


if __name__ == "__main__":
    main()
