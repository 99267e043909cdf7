"""Translation training, top to bottom: pairs held once as uint8, a seeded batch per step, the
discriminator's step (with ``--adversarial``) then the generator's, held-out PSNR/SSIM/Lite0
distance at intervals; checkpoints, resume, divergence and preemption through the engine."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from transferlab.engine.checkpoint import capture_state, restore_state
from transferlab.engine.fabric import setup_trained, unwrap
from transferlab.engine.performance import performance_of
from transferlab.engine.session import TrainingSession
from transferlab.options.translate import TranslateOptions
from transferlab.tasks.translate.data import Pairs, input_channels
from transferlab.tasks.translate.losses import TranslationLoss
from transferlab.tasks.translate.networks import DISCRIMINATORS, GENERATORS

TASK = "translate"
MODEL_KIND = "translator"
#: Options that define the networks, the data and the objective: a resumed run must keep them.
FIXED_ON_RESUME = ("task", "backbone", "generator", "img_size", "scale", "noise", "batch_size", "lr", "encoder_lr_mult",
                   "decoder_width", "l1_weight", "perceptual_weight", "adversarial", "adversarial_weight", "d_init",
                   "d_features", "val_fraction", "seed")  # fmt: skip
METRICS = ("step", "loss", "l1", "perceptual", "adversarial", "d_loss", "psnr", "ssim", "lite0_distance", "fid_lite0")
#: Tasks whose outputs are invented rather than restored: FID on Lite0 features is reported for them.
GENERATIVE = ("colorize", "inpaint", "edges", "paired")
#: Held-out images scored at each evaluation (all of them at the end, by `translate evaluate`).
EVAL_IMAGES = 256


def score(output: torch.Tensor, target: torch.Tensor, task: str = "", performance: Any = None) -> dict[str, float]:
    """PSNR, SSIM, Lite0 distance; with a generative ``task``, also FID/KID on Lite0 features.
    The feature networks run as ``performance`` says (default: translate's rule for the CPU)."""
    from transferlab import metrics
    from transferlab.engine.performance import for_inference

    performance = performance or for_inference("cpu", TranslateOptions.cpu_defaults)
    scores = metrics.compute("image_quality", output=output, target=target, performance=performance)
    record = {k: scores[k] for k in ("psnr", "ssim", "lite0_distance")}
    if task in GENERATIVE and len(target) >= 2:
        as_uint8 = lambda t: (t.clamp(0, 1) * 255).round().to(torch.uint8)  # noqa: E731
        fid = metrics.compute(
            "fid_kid", real=as_uint8(target), fake=as_uint8(output), extractor="lite0", performance=performance
        )
        record |= {"fid_lite0": fid.fid, "kid_lite0": fid.kid}
    return record


def translate_batches(net: torch.nn.Module, x: torch.Tensor, performance: Any, batch_size: int = 32) -> torch.Tensor:
    """The network's outputs for ``x`` (on the CPU, float), in batches, run as ``performance`` says."""
    device = next(net.parameters()).device
    with performance.inference(net):
        return torch.cat([net(performance.inputs(b.to(device))).float().cpu() for b in x.split(batch_size)])


def discriminator_name(opts: TranslateOptions) -> str:
    return "gan-run" if opts.d_init else "lite0" if opts.d_features == "lite0" else "patchgan"


class Translator:
    def __init__(self, pairs: Pairs, opts: TranslateOptions, fabric: Any, pretrained: bool = True) -> None:
        self.pairs, self.opts, self.fabric = pairs, opts, fabric
        channels = input_channels(opts.task)
        generator = GENERATORS[opts.generator](opts.backbone, channels, opts.img_size, opts.decoder_width, pretrained)
        self.architecture, self.weights_source = generator.architecture, generator.weights_source
        encoder, decoder = generator.parameter_groups()
        groups = [{"params": encoder, "lr": opts.lr * opts.encoder_lr_mult}, {"params": decoder, "lr": opts.lr}]
        optimizer = torch.optim.Adam(groups, lr=opts.lr, betas=(0.5, 0.999))
        self.generator, self.opt_g = setup_trained(fabric, generator, optimizer)
        self.discriminator = self.opt_d = None
        if opts.adversarial:
            net = DISCRIMINATORS[discriminator_name(opts)](channels, run=opts.d_init)
            trained = [p for p in net.parameters() if p.requires_grad]
            opt_d = torch.optim.Adam(trained, lr=opts.lr, betas=(0.5, 0.999))
            self.discriminator, self.opt_d = setup_trained(fabric, net, opt_d)
        weights = (opts.l1_weight, opts.perceptual_weight, opts.adversarial_weight)
        self.loss = performance_of(fabric).prepare(TranslationLoss(*weights, self.discriminator).to(fabric.device))
        self.step, self.window = 0, []
        self.history: dict[str, list[float]] = {k: [] for k in ("loss", "l1", "perceptual", "adversarial", "d_loss")}
        self.evaluations: list[dict[str, float]] = []
        self._held_out: tuple[torch.Tensor, torch.Tensor] | None = None

    def train_step(self, session: TrainingSession) -> float:
        x, y = (t.to(self.fabric.device) for t in self.pairs.train_batch(self.step, self.opts.task, self.opts))
        fake = self.generator(x)
        d_loss = torch.zeros(())
        if self.discriminator is not None:
            with self.fabric.autocast():
                d_loss = self.loss.discriminator_loss(x, fake, y)
            self.opt_d.zero_grad(set_to_none=True)
            self.fabric.backward(d_loss)
            self.opt_d.step()
        with self.fabric.autocast():  # the frozen Lite0 of the perceptual loss in the run's precision too
            terms = self.loss.generator_loss(x, fake, y)
        session.check_finite(terms["total"].detach(), f"step {self.step + 1}", "lower --lr or --adversarial-weight")
        self.opt_g.zero_grad(set_to_none=True)
        self.fabric.backward(terms["total"])
        self.opt_g.step()
        self.step += 1
        row = {"loss": terms["total"], **terms, "d_loss": d_loss}
        for key in self.history:
            self.history[key].append(float(row[key].detach()) if key in row else float("nan"))
        return self.history["loss"][-1]

    def translate(self, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        return translate_batches(unwrap(self.generator), x, performance_of(self.fabric), batch_size)

    def evaluate(self, final: bool = False) -> dict[str, float]:
        if self._held_out is None:  # fixed inputs: made once, scored at every evaluation
            self._held_out = self.pairs.held_out(self.opts.task, self.opts, EVAL_IMAGES)
        x, y = self._held_out
        scores = score(self.translate(x), y, self.opts.task if final else "", performance_of(self.fabric))
        record = {"step": self.step, **scores}
        if not self.evaluations or self.evaluations[-1]["step"] != self.step:
            self.evaluations.append(record)
        return record

    def fit(self, session: TrainingSession, stop_after: int | None = None) -> None:
        opts = self.opts
        last = opts.steps if stop_after is None else min(opts.steps, self.step + stop_after)
        while self.step < last:
            loss = self.train_step(session)
            session.advance(f"loss {loss:.4f}")
            row = {"step": self.step, **{k: v[-1] for k, v in self.history.items()}}
            if (opts.eval_every and self.step % opts.eval_every == 0) or self.step == opts.steps:
                row.update(self.evaluate(final=self.step == opts.steps))
                session.advance(f"loss {loss:.4f} | held-out PSNR {row['psnr']:.2f} dB", steps=0)
            session.log(row)
            session.step_boundary(self.step, self.state, last=self.step == last)

    def _stateful(self) -> dict[str, Any]:
        parts = {"generator": self.generator, "opt_g": self.opt_g}
        if self.discriminator is not None:
            parts |= {"discriminator": self.discriminator, "opt_d": self.opt_d}
        return parts

    def state(self) -> dict[str, Any]:
        extra = {"step": self.step, "history": self.history, "evaluations": self.evaluations}
        return capture_state(self.opts, **self._stateful(), **extra)

    def restore(self, state: dict[str, Any]) -> None:
        restore_state(state, **self._stateful())
        self.step = int(state["step"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.evaluations = list(state["evaluations"])

    def model_spec(self) -> dict[str, Any]:
        opts = self.opts
        return {"kind": MODEL_KIND, "generator": opts.generator, "backbone": self.architecture, "task": opts.task,
                "in_channels": input_channels(opts.task), "img_size": opts.img_size, "width": opts.decoder_width,
                "scale": opts.scale, "noise": opts.noise, "options": asdict(opts)}  # fmt: skip
