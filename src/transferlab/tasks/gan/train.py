"""GAN training, top to bottom: real images resident on the device, one discriminator and one
generator step per iteration (the loss owns both), EMA of the generator, checkpoints, samples
and FID at intervals.

Batches and latents come from generators seeded by (seed, step), and every other random state
is checkpointed, so ``--resume`` continues the curve the uninterrupted run would have drawn.
Losses stay on the device and are read every ``LOG_EVERY`` steps (no per-step synchronisation).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferlab import metrics
from transferlab.data import load_images
from transferlab.data.loaders import decode_all
from transferlab.engine.batches import BatchDraw, flip_where
from transferlab.engine.checkpoint import capture_state, restore_state
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import performance_of, unwrap
from transferlab.engine.rng import step_generator
from transferlab.engine.session import TrainingSession, fingerprint
from transferlab.engine.steps import StepRecipe
from transferlab.errors import DataError, RunError, UsageError
from transferlab.io import save_grid
from transferlab.metrics.generation import GenerationMetric
from transferlab.options.gan import GanOptions
from transferlab.pixels import signed_to_uint8
from transferlab.runs import CLASSIFIER, GAN, read_run, save_run
from transferlab.sampling import class_labels, sample_images
from transferlab.tasks.gan.augment import DiffAugment, parse_policy
from transferlab.tasks.gan.losses import AdversarialLoss
from transferlab.tasks.gan.networks import ARCHITECTURES, RESOLUTIONS, dcgan_init
from transferlab.tasks.gan.report import GanResult, write_report

TASK = "gan"
LOG_EVERY = 25
MIN_IMAGES = 8
#: A loss above this, sustained over a whole logging window, means training has diverged.
BLOWUP = 1e3
#: Options that define the networks: a resumed run must keep them.
ARCH_KEYS = ("arch", "img_size", "channels", "conditional", "z_dim", "width", "d_features")
METRICS = ("step", "d_loss", "g_loss", "d_real", "d_fake")
DIVERGENCE_REMEDY = "lower --lr-d/--lr-g, add --r1 1, or use --precision 32"


class RealImages:
    """The training images, decoded once, resident on the device as uint8."""

    def __init__(self, data: Any, opts: GanOptions, device: torch.device) -> None:

        images, self.classes, self.description = load_images(data)
        if len(images) < MIN_IMAGES:
            raise DataError(
                f"{self.description} holds {len(images)} usable image(s); a GAN needs at least {MIN_IMAGES}",
                "add images (100 is a workable few-shot set, with DiffAugment)",
            )
        pixels = decode_all(images, opts.img_size)  # any size and mode: resized, centre-cropped, RGB
        grey = bool((pixels[:, 0] == pixels[:, 1]).all() and (pixels[:, 1] == pixels[:, 2]).all())
        self.channels = opts.channels or (1 if grey else 3)
        self.pixels = (pixels[:, :1] if self.channels == 1 else pixels).to(device)
        self.labels = torch.as_tensor(images.labels, device=device)
        self.seed, self.xflip = opts.seed, opts.xflip

    def __len__(self) -> int:
        return len(self.pixels)

    def fingerprint(self) -> str:
        return fingerprint(self.pixels, self.labels, self.description)

    def batch(self, draw: BatchDraw) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of the step's real images in [-1, 1], and their labels."""
        index = draw.indices(len(self)).to(self.pixels.device)
        x = self.pixels[index].float().div_(127.5).sub_(1)
        if self.xflip:
            (x,) = flip_where(draw.flips(), x)
        return x, self.labels[index]


def build_networks(opts: GanOptions, channels: int, num_classes: int) -> tuple[nn.Module, nn.Module]:
    arch = ARCHITECTURES[opts.arch]
    width = opts.width or arch.default_width
    z_kwargs = {"z_dim": opts.z_dim} if opts.z_dim else {}
    generator = arch.generator(opts.img_size, channels, width=width, num_classes=num_classes, **z_kwargs)
    if opts.d_features == "lite0":
        from transferlab.tasks.gan.projected import ProjectedDiscriminator

        discriminator = ProjectedDiscriminator(channels, num_classes=num_classes)
    else:
        discriminator = arch.discriminator(opts.img_size, channels, width=width, num_classes=num_classes)
    if opts.arch == "dcgan":
        generator.apply(dcgan_init)
        if opts.d_features == "none":
            discriminator.apply(dcgan_init)
    return generator, discriminator


def freeze_lowest_blocks(discriminator: nn.Module, count: int) -> None:
    """FreezeD (Mo et al. 2020): keep the lowest ``count`` discriminator blocks as initialised."""
    blocks = discriminator.blocks
    if count > len(blocks):
        raise UsageError(
            f"--freeze-d {count} is more than the discriminator's {len(blocks)} blocks",
            f"use --freeze-d between 0 and {len(blocks)}",
        )
    for block in list(blocks)[:count]:
        block.requires_grad_(False)


class GanRecipe(StepRecipe[GanOptions, GanResult]):
    """One D and one G step per iteration on resident real images; EMA, samples, FID/KID."""

    task, options, metrics = TASK, GanOptions, METRICS
    title_format, name_format = "training GAN", "{arch}"
    command = "transferlab gan train {data}"

    def __init__(self, data: Any, opts: GanOptions, fabric: Any, run_dir: Path) -> None:
        self.opts, self.run_dir, self.fabric = opts, run_dir, fabric
        self.real = RealImages(data, opts, fabric.device)
        self.num_classes = len(self.real.classes) if opts.conditional else 0
        if opts.conditional and self.num_classes < 2:
            raise DataError(
                f"--conditional needs labelled images, but {self.real.description} has one class",
                "arrange images as DATA/<class>/<image>, or leave out --conditional",
            )
        generator, discriminator = build_networks(opts, self.real.channels, self.num_classes)
        if opts.init:
            load_source_weights(opts.init, generator, discriminator, opts)
        freeze_lowest_blocks(discriminator, opts.freeze_d)
        self.ema = self._make_ema(generator)
        betas = (opts.beta1, 0.999)
        opt_g = torch.optim.Adam(generator.parameters(), lr=opts.lr_g, betas=betas)
        opt_d = torch.optim.Adam([p for p in discriminator.parameters() if p.requires_grad], lr=opts.lr_d, betas=betas)
        self.generator, self.opt_g = setup_trained(fabric, generator, opt_g)
        self.discriminator, self.opt_d = setup_trained(fabric, discriminator, opt_d)
        kind = "hinge" if opts.d_features == "lite0" else ARCHITECTURES[opts.arch].loss
        augment = DiffAugment(opts.augment) if parse_policy(opts.augment) else None
        self.loss = AdversarialLoss(self.discriminator, kind, augment, opts.r1_gamma)
        self.z_dim = generator.z_dim
        fixed = torch.Generator().manual_seed(opts.seed + 12345)
        self.fixed_z = torch.randn(64, self.z_dim, generator=fixed).to(fabric.device)
        self.fixed_labels = torch.arange(64, device=fabric.device) % max(self.num_classes, 1)
        self.step = 0
        self.evaluations: list[dict[str, float]] = []
        self.best: dict[str, float] = {}
        self.snapshots: list[int] = []
        self.loop_seconds = 0.0  # set by fit: the training loop's own time (benchmarks budget steps by it)
        self._pending: list[torch.Tensor] = []
        self._metric: Any = None
        self.extractor: dict[str, Any] = {}

    # ------------------------------------------------------------------ pieces

    def _make_ema(self, generator: nn.Module) -> Any:
        if not (ARCHITECTURES[self.opts.arch].ema and self.opts.ema_decay > 0):
            return None
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(self.opts.ema_decay), use_buffers=True)
        return ema.to(self.fabric.device).eval().requires_grad_(False)

    @classmethod
    def check(cls, opts: GanOptions) -> None:

        if opts.arch is not None and opts.arch not in ARCHITECTURES:
            raise UsageError(f"unknown --arch '{opts.arch}'", f"use one of: {', '.join(ARCHITECTURES)}")
        if opts.img_size not in RESOLUTIONS:
            raise UsageError(f"--img-size {opts.img_size} is not supported", f"use one of {RESOLUTIONS}")
        parse_policy(opts.augment)
        if opts.fid_features.startswith("run:"):  # fail before training, not at the first evaluation
            read_run(opts.fid_features.removeprefix("run:"), model_kind=CLASSIFIER)

    @classmethod
    def configure(cls, opts: GanOptions, fabric: Any, resumed: bool) -> GanOptions:
        """Fine-tuning keeps the source's networks unless told otherwise (before the device's
        defaults fill what is left unset)."""

        if not opts.init:
            return opts
        source = read_run(opts.init, model_kind=GAN).model
        return replace(opts, **{k: source[k] for k in ("arch", "width") if getattr(opts, k) is None and source.get(k)})

    def fingerprint(self) -> str:
        return self.real.fingerprint()

    @property
    def sampler(self) -> nn.Module:
        """The generator samples come from: the EMA one where there is one. Never the data-parallel
        wrapper: sampling happens on rank 0 alone, and a wrapped forward pass would wait for the
        other ranks to broadcast buffers with it (the two-process hang this once caused)."""
        return self.ema.module if self.ema is not None else unwrap(self.generator)

    def _sampling(self) -> Any:
        """The sampling generator in evaluation mode, as the run's precision and format say."""
        return performance_of(self.fabric).inference(self.sampler)

    @property
    def spec(self) -> dict[str, int]:
        return {"z_dim": self.z_dim, "num_classes": self.num_classes}

    def generate(self, count: int, seed_offset: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``count`` samples (latents drawn from (seed, step): the same at a resumed step) and the
        classes they were made for, in turn (None if unconditional)."""
        rng = step_generator(self.opts.seed, self.step + seed_offset)
        with self._sampling() as net:
            images = sample_images(net, self.spec, count, rng)
        return images, class_labels(self.spec, count, None)

    # ------------------------------------------------------------------ the loop

    def train_step(self, session: TrainingSession) -> dict[str, float]:
        opts = self.opts
        draw = BatchDraw.for_step(opts.seed, self.step, opts.batch_size, self.fabric)  # this rank's share
        real, real_labels = self.real.batch(draw)
        labels = real_labels if self.num_classes else None
        z = draw.normal(self.z_dim).to(self.fabric.device)
        fake = self.generator(z, labels)  # one generator pass serves both phases (as DCGAN does)
        d_loss, stats = self.loss.discriminator_loss(real, fake, labels, draw)
        self.opt_d.zero_grad(set_to_none=True)
        self.fabric.backward(d_loss)
        self.opt_d.step()
        g_loss = self.loss.generator_loss(fake, labels, draw)
        self.opt_g.zero_grad(set_to_none=True)
        self.fabric.backward(g_loss)
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update_parameters(unwrap(self.generator))
        self._pending.append(torch.stack([d_loss.detach().float(), g_loss.detach().float(), *stats.values()]))
        self.step += 1
        return {}  # the losses stay on the device and are logged LOG_EVERY steps at a time (_flush)

    def _flush(self) -> None:
        """Read the pending losses (one device sync), stop on divergence, log them."""
        if not self._pending:
            return
        values = torch.stack(self._pending).cpu()
        first_step = self.step - len(self._pending) + 1
        self._pending = []
        finite = torch.isfinite(values[:, :2]).all(dim=1)
        if not finite.all():
            bad = first_step + int((~finite).nonzero()[0])
            self.session.diverged(f"the losses became non-finite at step {bad}", DIVERGENCE_REMEDY)
        if len(values) >= LOG_EVERY and values[:, :2].abs().mean(dim=0).max() > BLOWUP:
            what = f"the losses blew up (mean |loss| > {BLOWUP:g}) in steps {first_step}..{self.step}"
            self.session.diverged(what, DIVERGENCE_REMEDY)
        rows = [dict(zip(METRICS, (first_step + i, *row))) for i, row in enumerate(values[:, :4].tolist())]
        self.session.log(*rows)
        self.session.advance(f"D {rows[-1]['d_loss']:.3f} G {rows[-1]['g_loss']:.3f}", steps=0)

    def fit(self, session: TrainingSession, stop_after: int | None = None) -> None:
        """The shared step loop, timed: benchmarks budget steps by the loop's own time."""
        self.session, started = session, time.perf_counter()
        super().fit(session, stop_after)
        self.loop_seconds = time.perf_counter() - started

    def after_step(self, session: TrainingSession) -> dict[str, float]:
        """Flush the losses, draw samples and score FID/KID as due."""
        opts = self.opts
        if self.step % LOG_EVERY == 0 or self.step == self.last_step:
            self._flush()
        if self._due(opts.sample_every) or self.step == opts.steps:
            self.save_samples()
        if self._due(opts.eval_every) or (self.step == opts.steps and opts.eval_every):
            self.evaluate()
        return {}

    def also_takes(self) -> str:
        every, steps = self.opts.eval_every, self.opts.steps
        evals = (steps // every - self.step // every) if every else 1
        return f"FID/KID at {evals} point(s)"

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    # ------------------------------------------------------------------ outputs

    def save_samples(self) -> None:

        if self.fabric.global_rank != 0 or (self.snapshots and self.snapshots[-1] == self.step):
            return
        with self._sampling() as net:
            images = net(self.fixed_z, self.fixed_labels if self.num_classes else None).float().cpu()
        folder = self.run_dir / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        save_grid(images, folder / f"step-{self.step:07d}.png", nrow=8, normalize=True, value_range=(-1, 1))
        self.snapshots.append(self.step)

    def evaluate(self) -> None:

        if self.fabric.global_rank != 0 or (self.evaluations and self.evaluations[-1]["step"] == self.step):
            return
        if self._metric is None:  # a seeded random subset: class folders are read class after class
            count = min(self.opts.fid_samples, len(self.real)) if self.opts.fid_samples else len(self.real)
            index = torch.randperm(len(self.real), generator=torch.Generator().manual_seed(self.opts.seed))[:count]
            index = index.to(self.real.pixels.device)
            labels = self.real.labels[index] if self.num_classes else None
            self._metric = GenerationMetric(
                self.real.pixels[index], self.opts.fid_features, self.fabric.device, labels, performance_of(self.fabric)
            )
        scores = self._metric.score(*self.generate(max(self.opts.fid_samples, 2)))
        record = {"step": self.step, "fid": scores.fid, "kid": scores.kid, "kid_std": scores.kid_std,
                  "diversity": scores.diversity, "real_diversity": scores.real_diversity}  # fmt: skip
        if self.num_classes and self.opts.fid_features.startswith("run:"):
            record |= self._class_consistency(max(self.opts.fid_samples, self.num_classes))
        self.evaluations.append(record)
        self.extractor = {"extractor": scores.extractor, "real": scores.real_samples, "fake": scores.fake_samples}
        if not self.best or scores.fid < self.best["fid"]:
            self.best = record
            self.save_run()

    def _class_consistency(self, count: int) -> dict[str, float]:
        """The classifier run of ``--fid-features run:RUN`` reads images made for each class in turn."""

        images, labels = self.generate(count, seed_offset=777)
        pixels = signed_to_uint8(images)
        judge = self._metric.features  # the classifier run already loaded for FID/KID
        read = metrics.compute(
            "class_consistency", images=pixels, labels=labels, classifier=judge, names=self.real.classes
        )
        return {"class_consistency": read["consistency"], "class_coverage": read["coverage"]}

    def weights(self) -> dict[str, torch.Tensor]:
        out = {f"G.{k}": v for k, v in unwrap(self.generator).state_dict().items()}
        out |= {f"D.{k}": v for k, v in unwrap(self.discriminator).state_dict().items()}
        if self.ema is not None:
            out |= {f"G_ema.{k}": v for k, v in self.ema.module.state_dict().items()}
        return {k: v.detach().cpu().clone() for k, v in out.items()}

    def save_run(self) -> None:

        save_run(
            self.run_dir,
            task=TASK,
            state_dict=self.weights(),
            model={
                "kind": "gan",
                **{k: getattr(self.opts, k) for k in ARCH_KEYS},
                "channels": self.real.channels,
                "z_dim": self.z_dim,
                "num_classes": self.num_classes,
                "ema": self.ema is not None,
            },
            class_names=self.real.classes if self.num_classes else [],
            preprocessing={"range": [-1, 1], "img_size": self.opts.img_size},
            metrics={"step": self.step, **({"best": self.best} if self.best else {})},
            extra={"options": asdict(self.opts), "data": f"{self.real.description}: {len(self.real)} images"},
            performance=performance_of(self.fabric),
        )

    def finish(self, seconds: float, write: bool, name: str = "") -> Any:

        label = name or str(self.opts.arch)
        timing = {"seconds": seconds, "loop_seconds": self.loop_seconds}
        if not write:  # stopped on purpose (the checkpoint holds everything), or not rank 0
            return GanResult(label, self.run_dir, self.run_dir / "report.html", self.step, **timing)
        if not self.best:
            self.save_run()  # no FID was measured: the run holds the final weights
        report = write_report(self, label, seconds)
        scores = {"best": self.best, "evaluations": self.evaluations, "extractor": self.extractor}
        return GanResult(label, self.run_dir, report, self.step, **timing, **scores)

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict[str, Any]:
        """The whole training state (losses flushed first; weights checked finite). The networks
        are kept as one prefixed dict (G., D., G_ema.): the layout of the run's model.safetensors."""
        self._flush()
        if not all(torch.isfinite(p).all() for p in self.generator.parameters()):
            self.session.diverged(f"the generator's weights became non-finite by step {self.step}", DIVERGENCE_REMEDY)
        return capture_state(
            self.opts, weights=self.weights(), opt_g=self.opt_g, opt_d=self.opt_d, step=self.step,
            ema_steps=self.ema.n_averaged if self.ema is not None else None, evaluations=self.evaluations,
            best=self.best, snapshots=self.snapshots,
        )  # fmt: skip

    def restore(self, state: dict[str, Any]) -> None:
        weights = state["weights"]
        load_prefixed(self.generator, weights, "G.")
        load_prefixed(self.discriminator, weights, "D.")
        if self.ema is not None:
            load_prefixed(self.ema.module, weights, "G_ema.")
            self.ema.n_averaged.fill_(int(state["ema_steps"]))
        restore_state(state, opt_g=self.opt_g, opt_d=self.opt_d)
        self.step = int(state["step"])
        self.evaluations, self.best = list(state["evaluations"]), dict(state["best"])
        self.snapshots = list(state["snapshots"])


def load_prefixed(module: nn.Module, weights: dict[str, torch.Tensor], prefix: str, strict: bool = True) -> None:
    module = unwrap(module)
    own = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    if not strict:  # transfer: keep what fits (class embeddings of another label set do not)
        shapes = {k: v.shape for k, v in module.state_dict().items()}
        own = {k: v for k, v in own.items() if k in shapes and shapes[k] == v.shape}
    module.load_state_dict(own, strict=strict)


def load_source_weights(run_dir: str | Path, generator: nn.Module, discriminator: nn.Module, opts: GanOptions) -> None:
    """``--init RUN``: start G and D from a GAN trained on a source domain (same architecture)."""
    from safetensors.torch import load_file

    run = read_run(run_dir, model_kind="gan")
    for key in ("arch", "img_size", "d_features", "width"):
        if run.model.get(key) != getattr(opts, key):
            raise RunError(
                f"--init {run_dir} has {key} {run.model.get(key)!r}, this run asks for {getattr(opts, key)!r}",
                f"train with --{key.replace('_', '-')} {run.model.get(key)} to fine-tune from it",
            )
    weights = load_file(str(run.weights_path))
    prefix = "G_ema." if any(k.startswith("G_ema.") for k in weights) else "G."
    try:
        load_prefixed(generator, weights, prefix, strict=False)
        load_prefixed(discriminator, weights, "D.", strict=False)
    except RuntimeError as exc:
        raise RunError(
            f"the networks of {run_dir} do not fit ({str(exc).splitlines()[0]})",
            "fine-tune from a run with the same --arch, --img-size and --width",
        ) from None
