"""``autoencoder``: pretrain a convolutional encoder on unlabelled source images, for transfer.

The encoder is a timm backbone (``--encoder``, default ``resnet10t``) used through its
``forward_features``; a small decoder of upsampling convolutions mirrors its stride back to the
image. The loss is the mean squared reconstruction error in the encoder's normalised input
space, optionally of a noisy input (denoising: :math:`\\lVert d(e(x + \\epsilon)) - x \\rVert^2`,
:math:`\\epsilon \\sim \\mathcal{N}(0, \\sigma^2)`). The run stores the encoder as a plain timm
state dict, so ``transferlab classify DATA --backbone ae:RUN`` fine-tunes or probes it like any
other backbone.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferlab.engine.rng import step_generator
from transferlab.errors import DataError, RunError, TrainingError, UsageError

MODEL_KIND = "autoencoder"
ENCODER_FILE = "encoder.safetensors"


@dataclass
class AutoencoderOptions:
    encoder: str = "resnet10t"
    img_size: int = 32
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    noise: float = 0.0  # denoising: std of the Gaussian noise added to inputs (normalised units)
    seed: int = 0
    device: str = "auto"


@dataclass
class AutoencoderResult:
    run_dir: Path
    report: Path
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


class Decoder(nn.Module):
    """Upsampling convolutions from the encoder's feature map (stride ``2**ups``) to the image."""

    def __init__(self, in_channels: int, ups: int, channels: int = 3, width: int = 128) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 1)]
        cin = width
        for i in range(ups):
            cout = max(width // 2 ** (i + 1), 16)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1)]
            layers += [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        layers.append(nn.Conv2d(cin, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)


class Autoencoder(nn.Module):
    def __init__(self, encoder: nn.Module, img_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        with torch.no_grad():
            probe = encoder.eval().forward_features(torch.zeros(1, 3, img_size, img_size))
        encoder.train()
        ups = round(math.log2(img_size / probe.shape[-1]))
        if probe.shape[-1] * 2**ups != img_size:
            raise UsageError(
                f"--img-size {img_size} is not a multiple of the encoder's stride",
                "use a power of two such as 32, 64 or 128",
            )
        self.decoder = Decoder(probe.shape[1], ups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.forward_features(x))


def _build(opts: AutoencoderOptions) -> tuple[Autoencoder, dict[str, Any]]:
    from transferlab import backbones

    built = backbones.create(opts.encoder, pretrained=False, num_classes=0, img_size=opts.img_size)
    return Autoencoder(built.model, opts.img_size), built.data_config


def pretrain(
    data: Any, *, out: str | Path | None = None, stop_after: int | None = None, **options: Any
) -> AutoencoderResult:
    """Train the autoencoder on DATA's images (labels, if any, are ignored); write the run,
    reconstructions, the loss curve and ``report.html``."""
    from transferlab.data import load_images
    from transferlab.data.loaders import decode_all
    from transferlab.devices import resolve_device
    from transferlab.progress import StepProgress

    opts = AutoencoderOptions(**options)
    if opts.steps < 1 or opts.batch_size < 2 or opts.noise < 0:
        raise UsageError("--steps >= 1, --batch-size >= 2 and --noise >= 0 are needed", "e.g. --steps 2000")
    start = time.perf_counter()
    torch.manual_seed(opts.seed)
    dev = resolve_device(opts.device)
    model, config = _build(opts)
    model = model.to(dev)
    images, _, description = load_images(data)
    if len(images) < 2:
        raise DataError(f"{description} holds {len(images)} usable image(s)", "an autoencoder needs a few hundred")
    mean = torch.tensor(config["mean"], device=dev).view(1, 3, 1, 1)
    std = torch.tensor(config["std"], device=dev).view(1, 3, 1, 1)
    pixels = decode_all(images, opts.img_size).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, opts.steps)
    losses: list[float] = []
    last = opts.steps if stop_after is None else min(stop_after, opts.steps)
    with StepProgress(opts.steps, 0, "pretraining autoencoder") as progress:
        for step in range(last):
            g = step_generator(opts.seed, step)
            index = torch.randint(len(pixels), (opts.batch_size,), generator=g).to(dev)
            x = (pixels[index].float() / 255 - mean) / std
            noisy = x + opts.noise * torch.randn_like(x) if opts.noise else x
            loss = F.mse_loss(model(noisy), x)
            if not torch.isfinite(loss):
                raise TrainingError(f"the loss became {loss.item()} at step {step + 1}", "lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            progress.advance(f"loss {losses[-1]:.4f}")
    run_dir = Path(out) if out else Path("runs") / "autoencoder" / time.strftime("%Y%m%d-%H%M%S")
    seconds = time.perf_counter() - start
    report = _write_run(run_dir, model, opts, config, description, losses, pixels[:8], (mean, std), seconds)
    return AutoencoderResult(run_dir, report, losses, seconds)


def _write_run(
    run_dir: Path, model: Autoencoder, opts: AutoencoderOptions, config: dict[str, Any], description: str,
    losses: list[float], sample: torch.Tensor, norm: tuple[torch.Tensor, torch.Tensor], seconds: float,
) -> Path:  # fmt: skip
    from torchvision.utils import save_image

    from transferlab.io import save_safetensors
    from transferlab.reports import plots
    from transferlab.reports.html import HtmlReport
    from transferlab.runs import save_run

    run_dir.mkdir(parents=True, exist_ok=True)
    save_safetensors(model.encoder.state_dict(), run_dir / ENCODER_FILE, metadata={"encoder": opts.encoder})
    save_run(
        run_dir, task="autoencoder", state_dict=model.state_dict(),
        model={"kind": MODEL_KIND, "encoder": opts.encoder, "img_size": opts.img_size},
        class_names=[], preprocessing={k: config[k] for k in ("mean", "std") if k in config},
        metrics={"final_loss": sum(losses[-20:]) / len(losses[-20:]), "steps": len(losses), "seconds": seconds},
        extra={"data": description, "options": asdict(opts)},
    )  # fmt: skip
    mean, std = norm
    model.eval()
    with torch.no_grad():
        x = sample.float() / 255
        rebuilt = (model((x - mean) / std) * std + mean).clamp(0, 1)
    save_image(torch.cat([x, rebuilt]).cpu(), run_dir / "reconstructions.png", nrow=len(x))
    plots.loss_curves({"reconstruction": losses}, run_dir / "losses.png")
    report = HtmlReport(f"autoencoder: {opts.encoder} on {description}")
    facts = {"data": description, "encoder": opts.encoder, "image size": opts.img_size, "steps": len(losses),
             "denoising noise": opts.noise, "seconds": round(seconds, 1)}  # fmt: skip
    report.table([{"": k, "value": v} for k, v in facts.items()], ["", "value"])
    report.heading("Reconstructions (top: input, bottom: output)").image(run_dir / "reconstructions.png", "recon")
    report.heading("Loss").image(run_dir / "losses.png", "loss")
    return report.save(run_dir / "report.html")


def encoder_weights(spec: str, img_size: int | None) -> tuple[str, Path, int]:
    """``ae:RUN`` -> (timm encoder name, its weights file, the image size it was trained at);
    a different ``img_size`` is refused, because the encoder's features were learnt at its own."""
    from transferlab.runs import read_run

    run_dir = Path(spec.removeprefix("ae:"))
    run = read_run(run_dir, model_kind=MODEL_KIND)
    trained = int(run.model["img_size"])
    if img_size is not None and img_size != trained:
        raise UsageError(
            f"the encoder of {run_dir} was trained on {trained} px images, not {img_size} px",
            f"use --img-size {trained}, or pretrain an autoencoder at {img_size} px",
        )
    weights = run_dir / ENCODER_FILE
    if not weights.is_file():
        raise RunError(f"{run_dir} has no {ENCODER_FILE}", "pretrain the autoencoder again")
    return str(run.model["encoder"]), weights, trained
