"""`detect train` against torchvision's reference detection loop (references/detection/engine.py
`train_one_epoch`: a DataLoader of images and targets with the references' "hflip" preset, the
model's own resize, summed losses, SGD, a warm-up scheduler), over the same network (FCOS on the
ImageNet Lite0 FPN, 320 px) and the same kangaroo training photos, in one process, alternating:
training images/s over the steady steps (transferlab's held-out scoring left out). Then inference
latency per image at 512 px, batch 1 and batch 8.

    .venv/bin/python benchmarks/detect_vs_torchvision.py [--epochs 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

from common import SHARED
from cpu_speed import step_clock

SIZE, BATCH, WARMUP = 320, 8, 3


def steady_rate(times: list[float]) -> float:
    """Images/s over the steps after WARMUP, leaving out the gaps that held-out scoring or an epoch
    boundary makes (the largest third)."""
    warmup = min(WARMUP, max(0, len(times) - 2))  # a short (dry) run keeps what it has
    gaps = sorted(b - a for a, b in zip(times[warmup:], times[warmup + 1 :]))
    return BATCH / statistics.median(gaps[: max(1, int(len(gaps) * 0.66))])


def transferlab_rate(data, epochs: int, out: Path, device: str = "cpu", size: int = SIZE) -> tuple[float, dict]:
    """(steady training img/s, held-out scores) of `detect train`."""
    import torch

    from transferlab.tasks import detect

    accelerator = "gpu" if torch.device(device).type == "cuda" else "cpu"
    with step_clock() as times:
        result = detect.train(data, out=out, epochs=epochs, img_size=size, batch_size=BATCH, eval_every=epochs,
                              accelerator=accelerator)  # fmt: skip
    return steady_rate(times), result.scores


class ReferenceDataset:
    """The train split as torchvision's references feed it: (image, target) with the "hflip" preset."""

    def __init__(self, split) -> None:
        import torch
        from torchvision.transforms import v2

        self.split = split
        self.transform = v2.Compose([v2.RandomHorizontalFlip(0.5), v2.ToDtype(torch.float, scale=True),
                                     v2.SanitizeBoundingBoxes()])  # fmt: skip

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int):
        from torchvision import tv_tensors

        image = tv_tensors.Image(self.split.images[i])
        boxes = tv_tensors.BoundingBoxes(self.split.boxes[i], format="XYXY", canvas_size=tuple(image.shape[-2:]))
        return self.transform(image, {"boxes": boxes, "labels": self.split.labels[i]})


def reference_rate(data, epochs: int, workers: int, device: str = "cpu", size: int = SIZE) -> float:
    """train_one_epoch's body, as torchvision's references write it, timed per step."""
    import torch

    from transferlab.tasks.detect.models import build_detector

    torch.manual_seed(0)
    device = torch.device(device)
    model = build_detector("fcos", "tf_efficientnet_lite0", len(data.classes), size).to(device)
    model.net.transform._skip_resize = False  # the references let the model resize
    loader = torch.utils.data.DataLoader(ReferenceDataset(data.train), batch_size=BATCH, shuffle=True,
                                         num_workers=workers, collate_fn=lambda b: tuple(zip(*b)))  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.001, total_iters=len(loader) - 1)
    model.train()
    times = []
    for _ in range(epochs):
        for images, targets in loader:
            images = [image.to(device) for image in images]
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            loss_dict = model(images, targets)
            losses = sum(loss for loss in loss_dict.values())
            if not math.isfinite(losses.item()):
                raise SystemExit("the reference loss diverged")
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
            warmup.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter())
    return steady_rate(times)


def latency(data) -> dict[int, float]:
    """Milliseconds per image at 512 px (eval: resize, network, NMS), batch 1 and batch 8."""
    from transferlab.tasks.detect.inference import predict
    from transferlab.tasks.detect.models import build_detector

    model = build_detector("fcos", "tf_efficientnet_lite0", len(data.classes), 512).eval()
    images = data.val.images[:16]
    result = {}
    for batch in (1, 8):
        predict(model, images[:batch], batch)  # warm-up
        started = time.perf_counter()
        predict(model, images, batch)
        result[batch] = 1000 * (time.perf_counter() - started) / len(images)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch

    from transferlab.tasks.detect.data import load_detection

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_detection(SHARED / "kangaroo.tar.gz")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(data.train)} training photos")
    rates: dict[str, list[float]] = {"transferlab": [], "reference (0 workers)": [], "reference (2 workers)": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rates["reference (0 workers)"].append(reference_rate(data, args.epochs, 0))
            rates["transferlab"].append(transferlab_rate(data, args.epochs, Path(tmp) / f"run{r}")[0])
            rates["reference (2 workers)"].append(reference_rate(data, args.epochs, 2))
            print({k: [round(v, 2) for v in vals] for k, vals in rates.items()}, flush=True)
    best_reference = max(statistics.median(v) for k, v in rates.items() if k.startswith("reference"))
    print("| loop | training img/s (median of rounds) |")
    print("| --- | --- |")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.2f} |")
    print(f"transferlab / best reference: {statistics.median(rates['transferlab']) / best_reference:.2f}x")
    ms = latency(data)
    print(f"inference at 512 px: batch 1 {ms[1]:.0f} ms/image, batch 8 {ms[8]:.0f} ms/image")


if __name__ == "__main__":
    main()
