"""Style transfer by optimisation (Gatys et al.): the whole recipe, top to bottom.

The image itself is the parameter. Each evaluation runs the frozen feature network on it and
sums a style loss (Gram matrices against the style images), a content loss (activations
against the content image) and total variation; L-BFGS or Adam updates the pixels. Large
outputs go coarse to fine: each level starts from the previous level's result, upsampled.

Losses are relative (each layer's error divided by the target's own magnitude), so the
weights mean the same thing for every feature network and smoothing mode.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from transferlab.errors import TrainingError, UsageError
from transferlab.options.stylize import StylizeOptions
from transferlab.progress import StepProgress
from transferlab.tasks.stylize.features import FeatureNetwork
from transferlab.tasks.stylize.losses import PerceptualLoss, mixed_grams, smooth

#: Coarse-to-fine levels are added while the next coarser level stays at least this large.
MIN_LEVEL_SIZE = 256


@dataclass
class Trace:
    evaluations: list[int] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    style: list[float] = field(default_factory=list)
    content: list[float] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # seconds since the start, at each evaluation
    seconds: float = 0.0
    started: float = field(default_factory=time.perf_counter)


def level_sizes(size: int, multiscale: bool) -> list[int]:
    sizes = [size]
    while multiscale and sizes[0] // 2 >= MIN_LEVEL_SIZE:
        sizes.insert(0, sizes[0] // 2)
    return sizes


def resize_long_side(image: torch.Tensor, size: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    scale = size / max(h, w)
    new = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(image, size=new, mode="bicubic", antialias=scale < 1, align_corners=False).clamp(0, 1)


class Objective:
    """The perceptual loss of one image at one resolution, against a fixed content image."""

    def __init__(
        self,
        net: FeatureNetwork,
        content: torch.Tensor,
        styles: list[torch.Tensor],
        mix: list[float],
        opts: StylizeOptions,
        mode: str,
    ) -> None:
        def layers(x: torch.Tensor) -> list[torch.Tensor]:
            return [smooth(f, mode) for f in net.layers(x)]

        weights = (opts.style_weight, opts.content_weight, opts.tv_weight)
        grams = mixed_grams(layers, styles, mix)
        self.loss = PerceptualLoss(layers, net.content_layer, grams, weights, net.style_layers)
        self.content_target = self.loss.content_target(content)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        total, style, content = self.loss(image, self.content_target)
        return total, float(style.detach()), float(content.detach())


def _check_finite(loss: torch.Tensor, evaluation: int) -> None:
    if not torch.isfinite(loss):
        raise TrainingError(
            f"the loss became {loss.item()} at evaluation {evaluation}",
            "lower --style-weight, or use --optimizer adam with a smaller --lr",
        )


def optimise_level(
    image: torch.Tensor, objective: Objective, opts: StylizeOptions, trace: Trace, level: int, tick: Callable[[], None]
) -> torch.Tensor:
    """Run ``opts.steps`` loss evaluations on ``image`` (a leaf tensor in [0, 1])."""
    image = image.detach().clone().requires_grad_(True)
    count = 0

    def closure() -> torch.Tensor:
        nonlocal count
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad(set_to_none=True)
        loss, style, content = objective(image)
        count += 1
        _check_finite(loss, len(trace.total) + 1)
        loss.backward()
        trace.evaluations.append(len(trace.total) + 1)
        trace.total.append(float(loss.detach()))
        trace.style.append(style)
        trace.content.append(content)
        trace.levels.append(level)
        trace.times.append(time.perf_counter() - trace.started)
        tick()
        return loss

    if opts.optimizer == "lbfgs":
        # The strong-Wolfe line search keeps L-BFGS stable: without it, large style weights or
        # smoothed activations sent the image to noise (seen at 256 px, 100 evaluations).
        optimizer = torch.optim.LBFGS(
            [image],
            lr=1.0,
            line_search_fn="strong_wolfe",
            max_iter=opts.steps,
            max_eval=opts.steps,
            history_size=50,
            tolerance_grad=0,
            tolerance_change=0,
        )
        while count < opts.steps:
            before = count
            optimizer.step(closure)
            if count == before:
                break
    elif opts.optimizer == "adam":
        optimizer = torch.optim.Adam([image], lr=opts.lr)
        for _ in range(opts.steps):
            optimizer.step(closure)
    else:
        raise UsageError(f"unknown optimizer '{opts.optimizer}'", "use lbfgs or adam")
    return image.detach().clamp(0, 1)


def run(
    net: FeatureNetwork, content: torch.Tensor, styles: list[torch.Tensor], opts: StylizeOptions
) -> tuple[torch.Tensor, Trace]:
    """Stylise ``content`` (1 x 3 x H x W in [0, 1]) with ``styles``; returns the image and the loss trace."""
    torch.manual_seed(opts.seed)
    mix = opts.style_mix or [1.0] * len(styles)
    if len(mix) != len(styles) or any(w < 0 for w in mix) or sum(mix) <= 0:
        raise UsageError(
            f"{len(mix)} style weight(s) for {len(styles)} style image(s)", "give one non-negative weight per --style"
        )
    mix = [w / sum(mix) for w in mix]
    mode = opts.smoothing or net.smoothing
    trace = Trace()
    sizes = level_sizes(opts.size, opts.multiscale)
    with StepProgress(len(sizes) * opts.steps, 0, "stylizing (loss evaluations)") as progress:
        image = None
        for level, size in enumerate(sizes):
            level_content = resize_long_side(content, size)
            level_styles = [resize_long_side(s, size) for s in styles]
            objective = Objective(net, level_content, level_styles, mix, opts, mode)
            if image is None:
                image = level_content if opts.init == "content" else torch.rand_like(level_content)
            else:
                image = F.interpolate(image, size=level_content.shape[-2:], mode="bicubic", align_corners=False)
                image = image.clamp(0, 1)
            image = optimise_level(image, objective, opts, trace, level, progress.advance)
    trace.seconds = time.perf_counter() - trace.started
    assert image is not None
    return image, trace


def relative_drop(trace: Trace) -> float:
    """How much the loss of the last level fell during that level (1.0 = to zero)."""
    last = [t for t, lv in zip(trace.total, trace.levels) if lv == trace.levels[-1]]
    return 1.0 - last[-1] / last[0] if last and last[0] > 0 and math.isfinite(last[0]) else 0.0
