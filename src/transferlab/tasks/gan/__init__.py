"""``gan``: train GANs, transfer into them, sample from them.

from transferlab import gan
source = gan.train("cifar10", arch="resnet", img_size=32, steps=20000).run_dir
faces = gan.train("faces.zip", init=source, freeze_d=2, steps=3000)      # FreezeD transfer
gan.compare("faces.zip", d_features="lite0", steps=3000)                   # vs scratch
gan.sample(faces.run_dir, 64, out="samples/")
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from transferlab.devices import resolve_device
from transferlab.engine.run import run
from transferlab.errors import RunError, UsageError
from transferlab.io import save_grid
from transferlab.options.gan import GanOptions
from transferlab.runs import default_run_dir, read_run
from transferlab.sampling import generate, interpolation_images, sample_images
from transferlab.tasks.gan.networks import ARCHITECTURES
from transferlab.tasks.gan.projected import ProjectedDiscriminator
from transferlab.tasks.gan.report import GanResult, write_comparison
from transferlab.tasks.gan.train import ARCH_KEYS, TASK, GanRecipe, build_networks, load_prefixed

__all__ = [
    "GanOptions",
    "GanResult",
    "compare",
    "feature_discriminator",
    "generate",
    "load_discriminator",
    "load_run",
    "sample",
    "train",
]


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

    return run(GanRecipe, data, out=out, resume=resume, stop_after=stop_after, fabric=fabric, name=name, **options)


def compare(data: Any, *, out: str | Path | None = None, **options: Any) -> list[GanResult]:
    """The transfer run asked for (``init``/``freeze_d`` or ``d_features``) and the same target and
    step budget from scratch, side by side in one table and report (same extractor, same counts)."""

    opts = GanOptions(**{k: v for k, v in options.items() if v is not None})
    if not (opts.init or opts.d_features != "none"):
        raise UsageError(
            "--compare scratch needs a transfer run to compare: --init RUN or --d-features lite0",
            "e.g. --init runs/gan/source --freeze-d 2 --compare scratch",
        )
    opts.check()
    GanRecipe.check(opts)
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


#: The registry's loader of this task's runs (``registry.load_run``): (generator, its spec).
load_run = load_generator


def load_discriminator(run_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained discriminator of a GAN run (to transfer it, e.g. into translation); it takes
    images in [-1, 1] at the run's size and channels and returns one logit per image."""
    from safetensors.torch import load_file

    run = read_run(run_dir, model_kind="gan")
    spec = run.model
    opts = GanOptions(**{k: spec[k] for k in ARCH_KEYS if k in spec})
    _, discriminator = build_networks(opts, int(spec["channels"]), int(spec["num_classes"]))
    load_prefixed(discriminator, load_file(str(run.weights_path)), "D.")
    return discriminator, spec


def feature_discriminator(channels: int) -> torch.nn.Module:
    """A discriminator on frozen ImageNet Lite0 features (projected, as ``--d-features lite0``)."""

    return ProjectedDiscriminator(channels, num_classes=0)


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
