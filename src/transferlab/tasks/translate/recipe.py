"""Translation training, top to bottom: pairs held once as uint8, a seeded batch per step, the
discriminator's step (with ``--adversarial``) then the generator's, held-out PSNR/SSIM/Lite0
distance at intervals; checkpoints, resume, divergence and preemption through the engine."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import torch

from transferlab import metrics
from transferlab.dense import encoder_spec, strategy_groups
from transferlab.engine.batches import BatchDraw
from transferlab.engine.checkpoint import capture_state, restore_state
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import for_inference, performance_of, unwrap
from transferlab.engine.session import TrainingSession, fingerprint, read_metrics
from transferlab.engine.steps import StepRecipe
from transferlab.errors import UsageError
from transferlab.options.translate import TranslateOptions
from transferlab.strategies import TRANSLATE, get_strategy
from transferlab.tasks.translate.data import input_channels, load_pairs
from transferlab.tasks.translate.losses import TranslationLoss
from transferlab.tasks.translate.networks import DISCRIMINATORS, GENERATORS
from transferlab.tasks.translate.report import TranslateResult, evaluations, write_run

TASK = "translate"
MODEL_KIND = "translator"
LOSSES = ("loss", "l1", "perceptual", "adversarial", "d_loss")
METRICS = ("step", *LOSSES, "psnr", "ssim", "lite0_distance", "fid_lite0")
#: Tasks whose outputs are invented rather than restored: FID on Lite0 features is reported for them.
GENERATIVE = ("colorize", "inpaint", "edges", "paired")
#: Held-out images scored at each evaluation (all of them at the end, by `translate evaluate`).
EVAL_IMAGES = 256


def score(output: torch.Tensor, target: torch.Tensor, task: str = "", performance: Any = None) -> dict[str, float]:
    """PSNR, SSIM, Lite0 distance; with a generative ``task``, also FID/KID on Lite0 features.
    The feature networks run as ``performance`` says (default: translate's rule for the CPU)."""

    performance = performance or for_inference("cpu", TranslateOptions.cpu_defaults)
    scores = metrics.compute("image_quality", output=output, target=target, performance=performance)
    record = {k: scores[k] for k in ("psnr", "ssim", "lite0_distance")}
    if task in GENERATIVE and len(target) >= 2:
        from transferlab.pixels import unit_to_uint8

        fid = metrics.compute(
            "fid_kid", real=unit_to_uint8(target), fake=unit_to_uint8(output), extractor="lite0",
            performance=performance,
        )  # fmt: skip
        record |= {"fid_lite0": fid.fid, "kid_lite0": fid.kid}
    return record


def translate_batches(net: torch.nn.Module, x: torch.Tensor, performance: Any, batch_size: int = 32) -> torch.Tensor:
    """The network's outputs for ``x`` (on the CPU, float), in batches, run as ``performance`` says."""
    device = next(net.parameters()).device
    with performance.inference(net):
        return torch.cat([net(performance.inputs(b.to(device))).float().cpu() for b in x.split(batch_size)])


def discriminator_name(opts: TranslateOptions) -> str:
    return "gan-run" if opts.d_init else "lite0" if opts.d_features == "lite0" else "patchgan"


class TranslateRecipe(StepRecipe[TranslateOptions, TranslateResult]):
    """A U-Net (pretrained encoder) trained on pairs made from photos, or given as A/B pairs."""

    task, options, metrics = TASK, TranslateOptions, METRICS
    title_format, name_format = "translating ({task}, {backbone})", "{task}-{backbone}"
    command = "transferlab translate train {data}"

    def __init__(self, data: Any, opts: TranslateOptions, fabric: Any, run_dir: Any) -> None:
        self.opts, self.fabric, self.run_dir = opts, fabric, run_dir
        self.pairs = load_pairs(data, opts.task, opts.img_size, opts.seed, opts.val_fraction)
        channels = input_channels(opts.task)
        self.strategy = get_strategy(opts.strategy, TRANSLATE)
        spec = encoder_spec(opts.backbone, self.strategy)
        generator = GENERATORS[opts.generator](spec, channels, opts.img_size, opts.decoder_width)
        self.architecture, self.weights_source = generator.architecture, generator.weights_source
        groups = strategy_groups(generator, self.strategy, opts.steps, opts.lr)
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
        self.step = 0
        self.final: dict[str, float] = {}  # the held-out scores at the last step (rank 0)
        self._held_out: tuple[torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def check(cls, opts: TranslateOptions) -> None:
        if opts.generator not in GENERATORS:
            raise UsageError(f"unknown --generator '{opts.generator}'", f"use one of: {', '.join(GENERATORS)}")
        get_strategy(opts.strategy, TRANSLATE)

    def encoder_scale(self) -> float:
        """The encoder's rate as a multiple of ``--lr`` at this step: the strategy's (0 while frozen,
        ``--encoder-lr-mult`` when fine-tuned, 1 from scratch), steps standing for epochs."""
        return self.strategy.encoder_scale(self.step, self.opts.steps, {"body_lr_mult": self.opts.encoder_lr_mult})

    def rate_groups(self) -> list[tuple[dict[str, Any], float]]:
        """The generator's (encoder, decoder) and the discriminator's groups: --lr sets all three."""
        groups = list(zip(self.opt_g.param_groups, [self.encoder_scale(), 1.0][-len(self.opt_g.param_groups) :]))
        return groups + [(g, 1.0) for g in (self.opt_d.param_groups if self.opt_d is not None else [])]

    def _set_rates(self) -> None:
        """The generator's groups at this step's rates (a gradual encoder joins on its step)."""
        for group, scale in self.rate_groups()[: len(self.opt_g.param_groups)]:
            group["lr"] = self.opts.lr * scale

    def _train_mode(self) -> None:
        """Frozen means frozen: the encoder's BatchNorm statistics too, while it does not train."""
        self.generator.train()
        if self.strategy.body_frozen(self.step, self.opts.steps, 2):
            unwrap(self.generator).encoder.eval()

    def fingerprint(self) -> str:
        pairs = self.pairs
        return fingerprint(pairs.targets, pairs.inputs if pairs.inputs is not None else "", pairs.train)

    @property
    def is_writer(self) -> bool:
        return self.fabric.global_rank == 0

    def train_step(self, session: TrainingSession) -> dict[str, float]:
        """One D step (with ``--adversarial``) and one G step on this rank's share; the losses."""
        self._set_rates()
        self._train_mode()
        draw = BatchDraw.for_step(self.opts.seed, self.step, self.opts.batch_size, self.fabric)
        x, y = (t.to(self.fabric.device) for t in self.pairs.train_batch(draw, self.opts.task, self.opts))
        fake = self.generator(x)
        d_loss = None
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
        return {k: float(row[k].detach()) if row.get(k) is not None else float("nan") for k in LOSSES}

    def translate(self, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        return translate_batches(unwrap(self.generator), x, performance_of(self.fabric), batch_size)

    def evaluate(self, final: bool = False) -> dict[str, float]:
        if self._held_out is None:  # fixed inputs: made once, scored at every evaluation
            self._held_out = self.pairs.held_out(self.opts.task, self.opts, EVAL_IMAGES)
        x, y = self._held_out
        scores = score(self.translate(x), y, self.opts.task if final else "", performance_of(self.fabric))
        if final:
            self.final = {"step": self.step, **scores}
        return scores

    def after_step(self, session: TrainingSession) -> dict[str, float]:
        """Held-out scores every ``--eval-every`` steps and at the last (rank 0's, as are the logs)."""
        opts = self.opts
        due = (opts.eval_every and self.step % opts.eval_every == 0) or self.step == opts.steps
        if not (due and self.is_writer):
            return {}
        scores = self.evaluate(final=self.step == opts.steps)
        session.advance(f"held-out PSNR {scores['psnr']:.2f} dB", steps=0)
        return scores

    def finish(self, seconds: float, write: bool, name: str = "") -> Any:

        label = name or self.opts.backbone
        if not write:
            return TranslateResult(label, self.run_dir, self.run_dir / "report.html", {}, seconds, self.weights_source)
        if not self.final:  # resumed after its last step had been trained and scored
            self.evaluate(final=True)
        rows = read_metrics(self.run_dir)
        report = write_run(self, self.run_dir, label, seconds, rows)
        return TranslateResult(label, self.run_dir, report, self.final, seconds, self.weights_source, evaluations(rows))

    def _stateful(self) -> dict[str, Any]:
        parts = {"generator": self.generator, "opt_g": self.opt_g}
        if self.discriminator is not None:
            parts |= {"discriminator": self.discriminator, "opt_d": self.opt_d}
        return parts

    def state(self) -> dict[str, Any]:
        return capture_state(self.opts, **self._stateful(), step=self.step)

    def restore(self, state: dict[str, Any]) -> None:
        restore_state(state, **self._stateful())
        self.step = int(state["step"])

    def model_spec(self) -> dict[str, Any]:
        opts = self.opts
        return {"kind": MODEL_KIND, "generator": opts.generator, "backbone": self.architecture, "task": opts.task,
                "in_channels": input_channels(opts.task), "img_size": opts.img_size, "width": opts.decoder_width,
                "scale": opts.scale, "noise": opts.noise, "options": asdict(opts)}  # fmt: skip
