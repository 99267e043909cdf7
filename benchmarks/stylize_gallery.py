"""Style you can see, on the offline Lite0 features, at 384 px on the CPU.

``--sweep``: the choice of layers, weights and smoothing, measured on fruits x Starry Night
(L-BFGS, --evals evaluations): for each setting, the style and content loss reached on one
yardstick (relative Gram error over all five Lite0 stages, unsmoothed; relative content error
at stage 4) and a contact sheet ``OUT/sweep.jpg`` to look at.

``--gallery``: three photos (baboon, fruits, scikit-image's chelsea) x the shared paintings with
the chosen defaults, as one picture (``docs/images/style-gallery.jpg``).

``--speed``: seconds to reach the same style loss, against the PyTorch tutorial's procedure
(pytorch.org/tutorials/advanced/neural_style_tutorial) on the same Lite0 stages in the same run:
L-BFGS without line search, the input clamped in the closure, MSE of Gram matrices x 1e6 plus
the content MSE. Both traces are read on the yardstick above.

    .venv/bin/python benchmarks/stylize_gallery.py --sweep --gallery --speed
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import ROOT, SHARED
from transferlab.tasks.stylize import optimize
from transferlab.tasks.stylize.features import feature_network
from transferlab.tasks.stylize.losses import PerceptualLoss, gram

PAINTINGS = ("starry_night", "scream")
SWEEP = {  # name: (smoothing, style weight, style layers (None: all five stages), tv weight)
    "none, w5, all": ("none", 5.0, None, 0.0),
    "none, w20, all": ("none", 20.0, None, 0.0),
    "none, w100, all": ("none", 100.0, None, 0.0),
    "none, w20, stages 1-4": ("none", 20.0, (0, 1, 2, 3), 0.0),
    "none, w20, stages 2-5": ("none", 20.0, (1, 2, 3, 4), 0.0),
    "channel, w100, all": ("channel", 100.0, None, 0.0),
    "none, w20, all, tv 1": ("none", 20.0, None, 1.0),
}


def load(path_or_array, size: int) -> torch.Tensor:
    image = Image.fromarray(path_or_array) if isinstance(path_or_array, np.ndarray) else Image.open(path_or_array)
    tensor = torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    return optimize.resize_long_side(tensor, size)


def photos(size: int) -> dict[str, torch.Tensor]:
    from skimage import data as skdata

    return {
        "baboon": load(SHARED / "styles" / "baboon.jpg", size),
        "fruits": load(SHARED / "styles" / "fruits.jpg", size),
        "chelsea": load(skdata.chelsea(), size),
    }


def yardstick(net, content: torch.Tensor, style: torch.Tensor) -> PerceptualLoss:
    grams = [gram(f) for f in net.layers(style)]
    return PerceptualLoss(net.layers, net.content_layer, grams, (1.0, 1.0, 0.0))


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8))


def sheet(rows: list[list[Image.Image]], labels: list[str], cell: int, out: Path) -> None:
    """A grid of images (each fitted into cell x cell), a caption under each row's first image."""
    width, height = max(len(r) for r in rows) * cell, len(rows) * (cell + 18)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for y, (row, label) in enumerate(zip(rows, labels)):
        for x, image in enumerate(row):
            fitted = image.copy()
            fitted.thumbnail((cell, cell))
            canvas.paste(fitted, (x * cell + (cell - fitted.width) // 2, y * (cell + 18)))
        draw.text((4, y * (cell + 18) + cell + 2), label, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, quality=90)


def run_sweep(net, size: int, evals: int, out: Path) -> None:
    content, style = photos(size)["fruits"], load(SHARED / "styles" / "starry_night.jpg", size)
    judge = yardstick(net, content, style)
    target = judge.content_target(content)
    print(f"\n| setting ({size} px, {evals} L-BFGS evaluations) | style loss | content loss | seconds |")
    print("| --- | --- | --- | --- |")
    images = []
    for name, (smoothing, weight, layers, tv) in SWEEP.items():
        opts = optimize.StylizeOptions(size=size, smoothing=smoothing, style_weight=weight, tv_weight=tv, steps=evals)
        image, trace = optimize.run(replace(net, style_layers=layers), content, [style], opts)
        with torch.no_grad():
            _, s, c = judge(image, target)
        print(f"| {name} | {float(s):.3f} | {float(c):.3f} | {trace.seconds:.0f} |", flush=True)
        images.append(to_pil(image))
    sheet([images[i : i + 4] for i in range(0, len(images), 4)], [" / ".join(list(SWEEP)[i : i + 4]) for i in range(0, len(images), 4)], size, out / "sweep.jpg")  # fmt: skip


def run_gallery(net, size: int, evals: int, out: Path) -> None:
    content = photos(size)
    styles = {name: load(SHARED / "styles" / f"{name}.jpg", size) for name in PAINTINGS}
    rows, labels = [[Image.new("RGB", (size, size), "white")] + [to_pil(s) for s in styles.values()]], ["paintings:"]
    opts = optimize.StylizeOptions(size=size, steps=evals)
    for name, photo in content.items():
        row = [to_pil(photo)]
        for style in styles.values():
            image, trace = optimize.run(net, photo, [style], opts)
            row.append(to_pil(image))
            print(f"{name} x style: {trace.seconds:.0f} s", flush=True)
        rows.append(row)
        labels.append(name)
    sheet(rows, labels, size, out)
    print(f"gallery: {out}")


def tutorial_procedure(net, content: torch.Tensor, style: torch.Tensor, evals: int, judge) -> tuple[list, list]:
    """The tutorial's loop on ``net``: LBFGS([input]) with its defaults, ``run[0] <= num_steps``."""
    style_targets = [gram(f).detach() for f in net.layers(style)]
    content_target = judge.content_target(content)
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image])
    times, styles, count, start = [], [], [0], time.perf_counter()

    def closure() -> torch.Tensor:
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad()
        feats = net.layers(image)
        style_loss = sum(F.mse_loss(gram(f), t) for f, t in zip(feats, style_targets))
        loss = 1e6 * style_loss + F.mse_loss(feats[net.content_layer], content_target)
        loss.backward()
        count[0] += 1
        with torch.no_grad():  # the yardstick, on the features already computed
            rel = sum(((gram(f) - t).pow(2).sum() / t.pow(2).sum()) for f, t in zip(feats, style_targets)) / len(feats)
        times.append(time.perf_counter() - start)
        styles.append(float(rel))
        return loss

    while count[0] < evals:
        optimizer.step(closure)
    return times, styles


def run_speed(net, size: int, evals: int) -> None:
    content, style = photos(size)["chelsea"], load(SHARED / "styles" / "starry_night.jpg", size)
    judge = yardstick(net, content, style)
    ref_times, ref_styles = tutorial_procedure(net, content, style, evals, judge)
    _, trace = optimize.run(net, content, [style], optimize.StylizeOptions(size=size, steps=evals))
    target = min(ref_styles)
    reached = next((t for t, s in zip(trace.times, trace.style) if s <= target), None)
    print(f"\ntutorial procedure: {evals} evaluations in {ref_times[-1]:.1f} s, best style loss {target:.4f}")
    print(f"transferlab: {evals} evaluations in {trace.times[-1]:.1f} s, best style loss {min(trace.style):.4f}")
    if reached is None:
        print("transferlab did not reach the tutorial's style loss")
    else:
        tutorial_at = ref_times[ref_styles.index(target)]
        print(f"seconds to style loss {target:.4f}: tutorial {tutorial_at:.1f} s, transferlab {reached:.1f} s "
              f"-> {tutorial_at / reached:.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--evals", type=int, default=150)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--gallery", action="store_true")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / ".bench-cache" / "style")
    args = parser.parse_args()
    torch.set_grad_enabled(True)
    net = feature_network("lite0")
    if args.sweep:
        run_sweep(net, args.size, args.evals, args.out)
    if args.gallery:
        run_gallery(net, args.size, args.evals, ROOT / "docs" / "images" / "style-gallery.jpg")
    if args.speed:
        run_speed(net, args.size, args.evals)


if __name__ == "__main__":
    main()
