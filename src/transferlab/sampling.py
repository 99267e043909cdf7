"""Sampling from a trained generator, shared by training (samples, FID/KID), ``gan sample``,
``classify --augment-with`` and the server: latents from a given generator, classes in turn.

``spec`` is a GAN run's model spec (``z_dim``, ``num_classes``); images come in [-1, 1].
"""

from __future__ import annotations

from typing import Any

import torch

from transferlab.devices import resolve_device
from transferlab.errors import RunError, UsageError
from transferlab.pixels import channels_last_array, signed_to_uint8
from transferlab.registry import GAN, load_run
from transferlab.runs import read_run


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation: Gaussian latents keep their norm along the path."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def check_label(spec: dict[str, Any], label: int | None) -> None:
    classes = int(spec["num_classes"])
    if label is not None and not 0 <= label < max(classes, 1):
        raise UsageError(f"--label {label} is outside the run's {classes} classes", f"use 0..{max(classes, 1) - 1}")


def class_labels(spec: dict[str, Any], count: int, label: int | None) -> torch.Tensor | None:
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
    labels, dev = class_labels(spec, count, label), next(generator.parameters()).device
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
    row_labels, dev = class_labels(spec, rows, label), next(generator.parameters()).device
    ends = torch.randn(2, rows, spec["z_dim"], generator=rng)
    t = torch.linspace(0, 1, steps).view(1, steps, 1)
    path_z = _slerp(ends[0][:, None], ends[1][:, None], t).reshape(-1, spec["z_dim"])
    path_labels = None if row_labels is None else row_labels.repeat_interleave(steps).to(dev)
    with torch.no_grad():
        return generator(path_z.to(dev), path_labels).float().cpu()


def to_uint8(images: torch.Tensor) -> Any:
    """Generator output in [-1, 1] (N x C x H x W) -> N x H x W x C uint8 numpy array."""
    return channels_last_array(signed_to_uint8(images))


def generate(run_dir: Any, per_class: dict[str, int], *, seed: int = 0, device: str = "auto") -> tuple[Any, Any]:
    """Images of the named classes from a class-conditional GAN run, as (N x H x W x C uint8 array,
    N class names): synthetic training data for a classifier (``classify --augment-with``)."""
    import numpy as np

    generator, spec = load_run(GAN, run_dir, resolve_device(device))
    names = read_run(run_dir, model_kind=GAN).class_names
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
