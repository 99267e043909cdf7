"""``gan``: train GANs, transfer into them, sample from them.

from transferlab import gan
source = gan.train("cifar10", arch="resnet", img_size=32, steps=20000).run_dir
faces = gan.train("faces.zip", init=source, freeze_d=2, steps=3000)      # FreezeD transfer
gan.compare("faces.zip", d_features="lite0", steps=3000)                   # vs scratch
gan.sample(faces.run_dir, 64, out="samples/")
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from transferlab.errors import RunError, UsageError
from transferlab.options.gan import GanOptions
from transferlab.runs import default_run_dir, read_run
from transferlab.tasks.gan.train import ARCH_KEYS, METRICS, TASK, GanTrainer, RealImages, load_prefixed

__all__ = [
    "GanOptions",
    "GanResult",
    "compare",
    "feature_discriminator",
    "generate",
    "load_discriminator",
    "sample",
    "train",
]


@dataclass
class GanResult:
    name: str
    run_dir: Path
    report: Path
    steps: int
    seconds: float
    best: dict[str, float] = field(default_factory=dict)  # step, fid, kid at the best FID
    evaluations: list[dict[str, float]] = field(default_factory=list)
    extractor: dict[str, Any] = field(default_factory=dict)  # name and sample counts behind the scores
    loop_seconds: float = 0.0  # the training loop alone: no data loading, network building or report


def train(
    data: Any,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    fabric: Any = None,
    name: str = "",
    **options: Any,
) -> GanResult:
    """Train a GAN on DATA (a folder or archive of images, class folders, or a built-in name).

    ``init=RUN`` fine-tunes from a source GAN (``freeze_d=K`` freezes its lowest K discriminator
    blocks); ``d_features="lite0"`` trains against frozen ImageNet features. ``resume=RUN``
    continues a stopped run exactly. Writes samples, curves, ``report.html`` and the run.
    """
    from transferlab.engine import rng
    from transferlab.engine.options import fabric_for
    from transferlab.engine.session import RunSpec, TrainingSession, read_checkpoint, resumed_options

    start = time.perf_counter()
    state = read_checkpoint(Path(resume), TASK) if resume else None
    given = {k: v for k, v in options.items() if v is not None}
    opts = resumed_options(state, given, ARCH_KEYS, GanOptions) if state else GanOptions(**given)
    opts.check()
    fabric = fabric or fabric_for(opts)
    if opts.init:  # fine-tuning keeps the source's networks unless told otherwise
        source = read_run(opts.init, model_kind="gan").model
        opts = replace(opts, **{k: source[k] for k in ("arch", "width") if getattr(opts, k) is None and source.get(k)})
    unset = opts.unset_defaults()
    opts = opts.for_device(fabric.device.type)
    if unset and not state:
        announce_defaults(opts, unset, fabric.device.type)
    run_dir = Path(resume) if resume else Path(out) if out else default_run_dir(TASK, name or opts.arch)
    rng.seed_everything(opts.seed)
    real = RealImages(data, opts, fabric.device)
    spec = RunSpec(
        TASK, run_dir, real.fingerprint(), {k: getattr(opts, k) for k in ARCH_KEYS}, f"transferlab gan train {data}"
    )
    session = TrainingSession(
        spec,
        fabric,
        total=opts.steps,
        title="training GAN",
        state=state,
        metrics=METRICS,
        logger=opts.logger,
        checkpoint_every=opts.checkpoint_every,
    )
    with session:
        trainer = GanTrainer(real, opts, run_dir, fabric)
        if state is not None:
            trainer.restore(state)
        trainer.fit(session, stop_after)
    label, seconds = name or opts.arch, time.perf_counter() - start
    timing = {"seconds": seconds, "loop_seconds": trainer.loop_seconds}
    if trainer.step < opts.steps:  # stopped on purpose; the checkpoint holds everything
        return GanResult(label, run_dir, run_dir / "report.html", trainer.step, **timing)
    if not trainer.best:
        trainer.save_run()  # no FID was measured: the run holds the final weights
    from transferlab.tasks.gan.report import write_report

    report = write_report(trainer, label, seconds)
    scores = {"best": trainer.best, "evaluations": trainer.evaluations, "extractor": trainer.extractor}
    return GanResult(label, run_dir, report, trainer.step, **timing, **scores)


def announce_defaults(opts: GanOptions, unset: list[str], device: str) -> None:
    """Say which device-dependent defaults this run took, so a slow or weak run is never a mystery."""
    from transferlab.progress import announce

    where = "a CPU" if device == "cpu" else "a GPU"
    chosen = " ".join(f"--{k.replace('_', '-')} {getattr(opts, k)}" for k in unset)
    announce(f"gan: the defaults for {where}: {chosen} (set any of them to override)")


def compare(data: Any, *, out: str | Path | None = None, **options: Any) -> list[GanResult]:
    """The transfer run asked for (``init``/``freeze_d`` or ``d_features``) and the same target and
    step budget from scratch, side by side in one table and report (same extractor, same counts)."""
    from transferlab.tasks.gan.report import write_comparison

    opts = GanOptions(**{k: v for k, v in options.items() if v is not None})
    if not (opts.init or opts.d_features != "none"):
        raise UsageError(
            "--compare scratch needs a transfer run to compare: --init RUN or --d-features lite0",
            "e.g. --init runs/gan/source --freeze-d 2 --compare scratch",
        )
    opts.check()
    root = Path(out) if out else default_run_dir(TASK, "compare")
    scratch_options = {**asdict(opts), "init": None, "freeze_d": 0, "d_features": "none"}
    results = [
        train(data, out=root / "transfer", name="transfer", **asdict(opts)),
        train(data, out=root / "scratch", name="scratch", **scratch_options),
    ]
    write_comparison(root, results)
    return results


def load_generator(run_dir: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The sampling generator of a GAN run (its EMA where kept); runs of other tasks are refused."""
    from safetensors.torch import load_file

    from transferlab.tasks.gan.networks import ARCHITECTURES

    run = read_run(run_dir, model_kind="gan")
    spec = run.model
    arch = ARCHITECTURES.get(spec.get("arch", ""))
    if arch is None:
        raise RunError(f"{run_dir} holds an unknown GAN architecture {spec.get('arch')!r}", "upgrade transferlab")
    z = {"z_dim": spec["z_dim"]}
    generator = arch.generator(
        spec["img_size"], spec["channels"], width=spec["width"] or arch.default_width,
        num_classes=spec["num_classes"], **z,
    )  # fmt: skip
    weights = load_file(str(run.weights_path))
    prefix = "G_ema." if spec.get("ema") else "G."
    load_prefixed(generator, weights, prefix)
    return generator.to(device).eval(), spec


def load_discriminator(run_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained discriminator of a GAN run (to transfer it, e.g. into translation); it takes
    images in [-1, 1] at the run's size and channels and returns one logit per image."""
    from safetensors.torch import load_file

    from transferlab.tasks.gan.train import build_networks

    run = read_run(run_dir, model_kind="gan")
    spec = run.model
    opts = GanOptions(**{k: spec[k] for k in ARCH_KEYS if k in spec})
    _, discriminator = build_networks(opts, int(spec["channels"]), int(spec["num_classes"]))
    load_prefixed(discriminator, load_file(str(run.weights_path)), "D.")
    return discriminator, spec


def feature_discriminator(channels: int) -> torch.nn.Module:
    """A discriminator on frozen ImageNet Lite0 features (projected, as ``--d-features lite0``)."""
    from transferlab.tasks.gan.projected import ProjectedDiscriminator

    return ProjectedDiscriminator(channels, num_classes=0)


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: Gaussian latents keep their norm along the path."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def check_label(spec: dict[str, Any], label: int | None) -> None:
    classes = int(spec["num_classes"])
    if label is not None and not 0 <= label < max(classes, 1):
        raise UsageError(f"--label {label} is outside the run's {classes} classes", f"use 0..{max(classes, 1) - 1}")


def _labels(spec: dict[str, Any], count: int, label: int | None) -> torch.Tensor | None:
    """Class ``label`` for every image, or the classes in turn; None for an unconditional GAN."""
    check_label(spec, label)
    if not int(spec["num_classes"]):
        return None
    return torch.full((count,), label) if label is not None else torch.arange(count) % int(spec["num_classes"])


def sample_images(
    generator: torch.nn.Module, spec: dict[str, Any], count: int, rng: torch.Generator, label: int | None = None
) -> torch.Tensor:
    """``count`` images in [-1, 1] (N x C x H x W, on the CPU): latents from ``rng``; a conditional
    GAN makes class ``label``, or cycles through its classes when ``label`` is None."""
    labels, dev = _labels(spec, count, label), next(generator.parameters()).device
    z = torch.randn(count, spec["z_dim"], generator=rng)
    with torch.no_grad():
        return torch.cat([
            generator(zc.to(dev), None if labels is None else lc.to(dev)).float().cpu()
            for zc, lc in zip(z.split(256), (labels if labels is not None else z[:, 0]).split(256))
        ])  # fmt: skip


def interpolation_images(
    generator: torch.nn.Module, spec: dict[str, Any], rows: int, rng: torch.Generator, steps: int = 10,
    label: int | None = None,
) -> torch.Tensor:  # fmt: skip
    """``rows`` x ``steps`` images walking a great circle between two random latents per row."""
    row_labels, dev = _labels(spec, rows, label), next(generator.parameters()).device
    ends = torch.randn(2, rows, spec["z_dim"], generator=rng)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    path_z = _slerp(ends[0][:, None], ends[1][:, None], t).reshape(-1, spec["z_dim"])
    path_labels = None if row_labels is None else row_labels.repeat_interleave(steps).to(dev)
    with torch.no_grad():
        return generator(path_z.to(dev), path_labels).float().cpu()


def to_uint8(images: torch.Tensor) -> Any:
    """Generator output in [-1, 1] (N x C x H x W) -> N x H x W x C uint8 numpy array."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def sample(
    run_dir: str | Path,
    count: int = 64,
    *,
    seed: int = 0,
    out: str | Path = "samples",
    label: int | None = None,
    interpolate: int = 0,
    device: str = "auto",
) -> list[Path]:
    """Write ``count`` images, ``grid.png``, and with ``interpolate=K`` K rows of latent
    interpolation (``interpolation.png``). The same seed gives the same images."""
    from transferlab.devices import resolve_device
    from transferlab.io import save_grid

    if count < 1 or interpolate < 0:
        raise UsageError("-n must be at least 1 and --interpolate 0 or more", "e.g. -n 64 --interpolate 8")
    generator, spec = load_generator(run_dir, resolve_device(device))
    g = torch.Generator().manual_seed(seed)
    images = sample_images(generator, spec, count, g, label)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, image in enumerate(images):
        path = out / f"sample-{seed}-{i:05d}.png"
        save_grid(image, path, normalize=True, value_range=(-1, 1))
        written.append(path)
    save_grid(images[:256], out / "grid.png", nrow=min(16, count), normalize=True, value_range=(-1, 1))
    written.append(out / "grid.png")
    if interpolate:
        frames = interpolation_images(generator, spec, interpolate, g)
        save_grid(frames, out / "interpolation.png", nrow=10, normalize=True, value_range=(-1, 1))
        written.append(out / "interpolation.png")
    return written


def generate(run_dir: str | Path, per_class: dict[str, int], *, seed: int = 0, device: str = "auto") -> tuple[Any, Any]:
    """Images of the named classes from a class-conditional GAN run, as (N x H x W x C uint8 array,
    N class names): synthetic training data for a classifier."""
    import numpy as np

    from transferlab.devices import resolve_device

    generator, spec = load_generator(run_dir, resolve_device(device))
    names = read_run(run_dir, model_kind="gan").class_names
    missing = sorted(set(per_class) - set(names))
    if not spec["num_classes"] or missing:
        raise RunError(
            f"{run_dir} cannot generate the classes {', '.join(missing) or sorted(per_class)}"
            + ("" if spec["num_classes"] else " (it is not class-conditional)"),
            "train it with --conditional on class folders named like the classifier's classes",
        )
    g = torch.Generator().manual_seed(seed)
    wanted = {name: count for name, count in per_class.items() if count > 0}
    images = [to_uint8(sample_images(generator, spec, count, g, names.index(name))) for name, count in wanted.items()]
    labels = [name for name, count in wanted.items() for _ in range(count)]
    return np.concatenate(images), np.array(labels)
