"""`segment train` with its defaults against the plain loop a user would otherwise write over
segmentation_models_pytorch, at the same wall-clock budget, one after the other in one process, on a
many-class set of ``segment_sets.py`` (367 training, 101 validation and 100 test scenes of 360x480,
the size of a common street-scene benchmark).

The plain loop, as a user reported it (our own code): ``smp.Unet("tu-tf_efficientnet_lite0")`` with
the ImageNet Lite0 weights transferlab ships, whole frames resized to 240x320 (a shorter side of 240),
batch 8, horizontal flips only, AdamW with the decoder at 2e-3 and the encoder at 2e-4 at a constant
rate, CE + Dice, bf16 autocast and channels_last; whole epochs while the budget lasts, then scored.
``--smp-precision fp32`` drops the autocast: on a CPU without native bf16 (AVX2 only, no AVX-512 BF16
or AMX) bf16 is emulated about 20x slower, so there the loop a user would run is 32-bit.
`segment train` gets the data flags and ``--classes`` only, and ``--time-budget`` one minute under
``--minutes`` for its set-up and report (at 20 minutes that is its CPU default of 19). Both are
scored on the test scenes, each mask at its own resolution (the shared scorer): mIoU, pixel and
class-average accuracy, per-class IoU.

smp is one of the dev extras (`make test` installs it).

    .venv/bin/python benchmarks/segment_vs_smp.py \\
        --set scenes-small --minutes 15 [--only smp|transferlab]

``--smp-epochs N`` trains the loop N epochs instead of a wall clock (both sides may then run at once,
one core each, for the scores; not for the times); ``--smp-decoder NAME`` puts a transferlab decoder in
the loop in smp's U-Net's place (the decoder study); ``--options "KEY=VALUE;..."`` changes `segment
train`'s options.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import itertools

import unet_variants  # noqa: F401  (registers the decoder study's U-Nets)
from common import ROOT, parse_options
from segment_sets import SETS

SIZE, BATCH, DECODER_LR, ENCODER_LR = 240, 8, 2e-3, 2e-4


def lite0_unet(classes: int):
    """smp's U-Net on timm's tf_efficientnet_lite0 with transferlab's ImageNet Lite0 weights."""
    import segmentation_models_pytorch as smp

    from transferlab import backbones

    net = smp.Unet("tu-tf_efficientnet_lite0", encoder_weights=None, classes=classes)
    lite0 = backbones.create("tf_efficientnet_lite0", num_classes=0, img_size=SIZE).model.state_dict()
    own = net.encoder.model.state_dict()
    missing = [k for k in own if k not in lite0]
    assert not missing, f"Lite0 weights lack {missing[:3]}"
    net.encoder.model.load_state_dict({k: v for k, v in lite0.items() if k in own})
    return net


class OwnDecoder(torch.nn.Module):
    """A transferlab decoder (``dense.DECODERS``, or a study variant) in the smp network's place in the
    loop: it takes [0, 1] and normalises itself, the loop feeds (x - 0.5) / 0.5."""

    def __init__(self, decoder: str, classes: int) -> None:
        super().__init__()
        from transferlab.dense import DECODERS

        self.net = DECODERS[decoder]("tf_efficientnet_lite0", 3, 224, 32, True, classes)
        self.encoder = self.net.encoder  # the loop's encoder rate finds it here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 0.5 + 0.5)


class Normalised(torch.nn.Module):
    """The smp network behind the [0, 1] input the shared scorer gives (Lite0's mean and std 0.5)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - 0.5) / 0.5)


def smp_loop(
    data: Path, classes: tuple[str, ...], seed: int, seconds: float | None = None, epochs: int | None = None,
    size: int = SIZE, device: str | torch.device = "cpu", batch: int = BATCH, decoder: str | None = None,
    precision: str = "bf16",
) -> tuple[dict, dict]:  # fmt: skip
    """The plain loop for ``seconds`` (whole epochs while they fit, 30 s kept for the scoring) or
    ``epochs``: (test scores, facts). ``decoder``: a transferlab decoder in smp's U-Net's place."""
    import torch.nn.functional as F

    from transferlab.engine.performance import for_inference
    from transferlab.pixels import whole_image_size
    from transferlab.tasks.segment.data import load_segmentation
    from transferlab.tasks.segment.inference import score
    from transferlab.tasks.segment.losses import SegmentationLoss

    started, device = time.perf_counter(), torch.device(device)
    torch.manual_seed(seed)
    train = load_segmentation(images=str(data / "train/images"), masks=str(data / "train/masks"),
                              classes=",".join(classes), hold_out=False).train  # fmt: skip
    shape = whole_image_size(*train.images[0].shape[-2:], size)  # 240 x 320 for 360 x 480 frames
    images = torch.stack([F.interpolate(i[None].float(), size=shape, mode="bilinear", antialias=True)[0]
                          for i in train.images]).div_(255).sub_(0.5).div_(0.5).to(device)  # fmt: skip
    masks = torch.stack([F.interpolate(m[None, None].float(), size=shape, mode="nearest")[0, 0].long()
                         for m in train.masks]).to(device)  # fmt: skip
    net = (OwnDecoder(decoder, len(classes)) if decoder else lite0_unet(len(classes))).to(
        device, memory_format=torch.channels_last
    )
    encoder = {id(p) for p in net.encoder.parameters()}
    optimizer = torch.optim.AdamW(
        [{"params": list(net.encoder.parameters()), "lr": ENCODER_LR},
         {"params": [p for p in net.parameters() if id(p) not in encoder], "lr": DECODER_LR}]
    )  # fmt: skip
    loss_fn = SegmentationLoss("ce+dice", 255).to(device)
    done, epoch_seconds, steps, train_seconds = 0, 0.0, 0, 0.0
    net.train()

    def more() -> bool:
        if epochs is not None:
            return done < epochs
        return time.perf_counter() - started + epoch_seconds < seconds - 30

    while more():
        epoch_started = time.perf_counter()
        for chosen in torch.randperm(len(images), device=device).split(batch):
            x, y = images[chosen], masks[chosen]
            flip = torch.rand(len(chosen), device=device) < 0.5
            x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                logits = net(x.contiguous(memory_format=torch.channels_last))
            loss = loss_fn(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        done, epoch_seconds = done + 1, time.perf_counter() - epoch_started
        train_seconds += epoch_seconds
    test = load_segmentation(images=str(data / "test/images"), masks=str(data / "test/masks"),
                             classes=",".join(classes), hold_out=False).train  # fmt: skip
    scores = score(Normalised(net), test, list(classes), 255, size, for_inference(device))
    return scores, {"precision": precision, "epochs": done, "minutes": (time.perf_counter() - started) / 60,
                    "train img/s": round(len(images) * done / max(train_seconds, 1e-9), 1)}  # fmt: skip


def transferlab_defaults(
    data: Path, classes: tuple[str, ...], seed: int, out: Path, device: str | torch.device = "cpu", **overrides: object
) -> tuple[dict, dict]:  # fmt: skip
    """`segment train` with the data flags and --classes only (and ``overrides``), then `segment
    evaluate` on the test scenes: (test scores, facts)."""
    from cpu_speed import step_clock
    from transferlab.tasks import segment

    accelerator = "gpu" if torch.device(device).type == "cuda" else "cpu"
    started = time.perf_counter()
    with step_clock() as times:  # the engine's own step boundaries
        segment.train(images=str(data / "train/images"), masks=str(data / "train/masks"),
                      val_images=str(data / "val/images"), val_masks=str(data / "val/masks"),
                      classes=",".join(classes), seed=seed, out=out, accelerator=accelerator, **overrides)  # fmt: skip
    minutes = (time.perf_counter() - started) / 60
    scores = segment.evaluate(out, images=str(data / "test/images"), masks=str(data / "test/masks"),
                              device=str(torch.device(device)))  # fmt: skip
    options = json.loads((out / "run.json").read_text())["options"]
    chosen = {k: options[k] for k in ("img_size", "epochs", "batch_size", "lr", "crop", "scales", "precision",
                                      "time_budget")}  # fmt: skip
    with (out / "metrics.csv").open() as log:  # one row an epoch: what the budgets let it train
        last = list(csv.DictReader(log))[-1]
    chosen |= {"epochs trained": int(last["epoch"]), "steps trained": int(last["step"])}
    gaps = sorted(b - a for a, b in itertools.pairwise(times))[: max(1, int(0.6 * (len(times) - 1)))]
    rate = options["batch_size"] / statistics.median(gaps) if gaps else float("nan")  # scoring gaps left out
    return scores, {"minutes": minutes, "steady train img/s": round(rate, 1), **chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="scenes-small")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("smp", "transferlab"))
    parser.add_argument(
        "--smp-epochs",
        type=int,
        help="the loop trains this many epochs, not --minutes of them "
        "(to run both sides at once on one core each: 15 is what 15 minutes fitted at the VM's best)",
    )
    parser.add_argument("--smp-decoder", help="a transferlab decoder (e.g. unet-transposed) in the loop, not smp's")
    parser.add_argument(
        "--smp-precision", choices=("bf16", "fp32"), default="bf16",
        help="the loop's autocast (fp32: none; what a user runs on a CPU without native bf16)",
    )  # fmt: skip
    parser.add_argument("--options", default="", help='segment train options besides the defaults: "KEY=VALUE;..."')
    parser.add_argument("--results", type=Path, default=ROOT / ".bench-cache" / "segment_vs_smp.jsonl")
    parser.add_argument("--keep", type=Path, help="keep `segment train`'s run (report, overlays) in this folder")
    args = parser.parse_args()
    build, classes = SETS[args.set]
    data = build(Path(os.environ.get("TRANSFERLAB_BENCH_CACHE", ROOT / ".bench-cache")), 367, 101, 360, 480,
                 n_test=100)  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.only != "smp":
            options = {"time_budget": args.minutes - 1, **parse_options(args.options)}
            rows.append(
                (
                    "segment train (defaults)" if not args.options else f"segment train ({args.options})",
                    *transferlab_defaults(data, classes, args.seed, args.keep or Path(tmp) / "run", **options),
                )
            )
        if args.only != "transferlab":
            budget = {"epochs": args.smp_epochs} if args.smp_epochs else {"seconds": args.minutes * 60}
            name = f"plain loop over transferlab {args.smp_decoder}" if args.smp_decoder else "plain loop over smp.Unet"
            name += "" if args.smp_precision == "bf16" else f", {args.smp_precision}"
            loop = smp_loop(data, classes, args.seed, decoder=args.smp_decoder, precision=args.smp_precision, **budget)
            rows.append((name, *loop))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a") as handle:
        for name, scores, facts in rows:
            per_class = {c["class"]: round(c["iou"], 3) for c in scores["per_class"]}
            handle.write(
                json.dumps(
                    {
                        "set": args.set,
                        "budget": args.minutes,
                        "who": name,
                        "facts": facts,
                        "miou": scores["miou"],
                        "pixel_accuracy": scores["pixel_accuracy"],
                        "class_accuracy": scores["class_accuracy"],
                        "per_class": per_class,
                    }
                )
                + "\n"
            )
    print(f"{args.set}, budget {args.minutes:g} min, test scenes")
    print("| | " + " | ".join(name for name, _, _ in rows) + " |")
    print("| --- |" + " --- |" * len(rows))
    for key in ("miou", "pixel_accuracy", "class_accuracy"):
        print(f"| {key} | " + " | ".join(f"{s[key]:.3f}" for _, s, _ in rows) + " |")
    for i, name in enumerate(classes):
        print(f"| IoU {name} | " + " | ".join(f"{s['per_class'][i]['iou']:.3f}" for _, s, _ in rows) + " |")
    print("| minutes | " + " | ".join(f"{f['minutes']:.1f}" for _, _, f in rows) + " |")
    for name, _, facts in rows:
        print(f"{name}: {facts}")


if __name__ == "__main__":
    main()
