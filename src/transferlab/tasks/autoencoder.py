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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferlab import backbones
from transferlab.backbones import ENCODER_FILE
from transferlab.data import load_images
from transferlab.data.loaders import decode_all
from transferlab.engine.batches import BatchDraw
from transferlab.engine.checkpoint import capture_state, restore_state
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import performance_of, unwrap
from transferlab.engine.run import run
from transferlab.engine.session import TrainingSession, fingerprint, read_metrics
from transferlab.engine.steps import StepRecipe
from transferlab.errors import DataError, UsageError
from transferlab.io import save_grid, save_safetensors
from transferlab.options.autoencoder import AutoencoderOptions
from transferlab.reports import plots
from transferlab.reports.html import HtmlReport
from transferlab.runs import TrainingResult, save_run

MODEL_KIND = "autoencoder"
TASK = "autoencoder"


AutoencoderResult = TrainingResult


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

    built = backbones.create(opts.encoder, pretrained=False, num_classes=0, img_size=opts.img_size)
    return Autoencoder(built.model, opts.img_size), built.data_config


class AutoencoderRecipe(StepRecipe[AutoencoderOptions, AutoencoderResult]):
    """The autoencoder's training: resident uint8 images, a seeded batch per step, AdamW + cosine."""

    task, options, metrics = TASK, AutoencoderOptions, ("step", "loss")
    title_format, name_format = "pretraining autoencoder", "{encoder}"
    command = "transferlab autoencoder pretrain {data}"

    def __init__(self, data: Any, opts: AutoencoderOptions, fabric: Any, run_dir: Path) -> None:

        self.opts, self.fabric, self.run_dir = opts, fabric, run_dir
        images, _, self.description = load_images(data)
        if len(images) < 2:
            raise DataError(
                f"{self.description} holds {len(images)} usable image(s)", "an autoencoder needs a few hundred"
            )
        model, self.config = _build(opts)
        dev = fabric.device
        self.mean = torch.tensor(self.config["mean"], device=dev).view(1, 3, 1, 1)
        self.std = torch.tensor(self.config["std"], device=dev).view(1, 3, 1, 1)
        self.pixels = decode_all(images, opts.img_size).to(dev)
        optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=1e-4)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, opts.steps)
        self.model, self.optimizer = setup_trained(fabric, model, optimizer)
        self.step = 0

    def fingerprint(self) -> str:
        return fingerprint(self.pixels)

    def train_step(self, session: TrainingSession) -> dict[str, float]:
        opts, fabric = self.opts, self.fabric
        draw = BatchDraw.for_step(opts.seed, self.step, opts.batch_size, fabric)  # this process's share
        x = (self.pixels[draw.indices(len(self.pixels)).to(fabric.device)].float() / 255 - self.mean) / self.std
        noisy = x + opts.noise * draw.normal(*x.shape[1:]).to(x.device) if opts.noise else x
        loss = F.mse_loss(self.model(noisy), x)
        session.check_finite(loss.detach(), f"step {self.step + 1}", "lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"loss": float(loss.detach())}

    def state(self) -> dict[str, Any]:
        parts = {"model": self.model, "optimizer": self.optimizer, "scheduler": self.scheduler}
        return capture_state(self.opts, **parts, step=self.step)

    def restore(self, state: dict[str, Any]) -> None:
        restore_state(state, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler)
        self.step = int(state["step"])

    def losses(self) -> list[float]:
        """The reconstruction loss of every step so far, from the run's metrics.csv."""

        return [row["loss"] for row in read_metrics(self.run_dir)]

    def finish(self, seconds: float, write: bool, name: str = "") -> AutoencoderResult:
        losses = self.losses()
        report = _write_run(self, losses, seconds) if write else self.run_dir / "report.html"
        return AutoencoderResult(self.run_dir, report, losses, seconds)


def train(
    data: Any,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    **options: Any,
) -> AutoencoderResult:
    """Train the autoencoder on DATA's images (labels, if any, are ignored); write the run,
    reconstructions, the loss curve and ``report.html``. ``resume=RUN`` continues a stopped run."""

    return run(AutoencoderRecipe, data, out=out, resume=resume, stop_after=stop_after, **options)


#: ``train``'s first name, kept: users call ``autoencoder.pretrain``.
pretrain = train


#: The registry's loader of this task's runs (``registry.load_run``): the pretrained encoder.
load_run = backbones.load_run_model


def _write_run(recipe: AutoencoderRecipe, losses: list[float], seconds: float) -> Path:

    run_dir, opts, config = recipe.run_dir, recipe.opts, recipe.config
    model, description = unwrap(recipe.model), recipe.description
    run_dir.mkdir(parents=True, exist_ok=True)
    save_safetensors(model.encoder.state_dict(), run_dir / ENCODER_FILE, metadata={"encoder": opts.encoder})
    save_run(
        run_dir, task="autoencoder", state_dict=model.state_dict(),
        model={"kind": MODEL_KIND, "encoder": opts.encoder, "img_size": opts.img_size},
        class_names=[], preprocessing={k: config[k] for k in ("mean", "std") if k in config},
        metrics={"final_loss": sum(losses[-20:]) / len(losses[-20:]), "steps": len(losses), "seconds": seconds},
        extra={"data": description, "options": asdict(opts)}, performance=performance_of(recipe.fabric),
    )  # fmt: skip
    mean, std = recipe.mean, recipe.std
    with performance_of(recipe.fabric).inference(model):
        x = recipe.pixels[:8].float() / 255
        rebuilt = (model((x - mean) / std).float() * std + mean).clamp(0, 1)
    save_grid(torch.cat([x, rebuilt]).cpu(), run_dir / "reconstructions.png", nrow=len(x))
    plots.loss_curves({"reconstruction": losses}, run_dir / "losses.png")
    report = HtmlReport(f"autoencoder: {opts.encoder} on {description}")
    facts = {"data": description, "encoder": opts.encoder, "image size": opts.img_size, "steps": len(losses),
             "denoising noise": opts.noise, "seconds": round(seconds, 1)}  # fmt: skip
    report.facts(facts)
    report.heading("Reconstructions (top: input, bottom: output)").image(run_dir / "reconstructions.png", "recon")
    report.heading("Loss").image(run_dir / "losses.png", "loss")
    return report.save(run_dir / "report.html")
