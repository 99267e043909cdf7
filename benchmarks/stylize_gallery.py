"""Style you can see, on the offline Lite0 features, at 384 px on the CPU.

``--sweep``: the choice of layers, weights and smoothing, measured on fruits x Starry Night
(L-BFGS, --evals evaluations): for each setting, the style and content loss reached on one
yardstick (relative Gram error over all five Lite0 stages, unsmoothed; relative content error
at stage 4) and a contact sheet ``OUT/sweep.jpg`` to look at.

``--gallery``: three photos (baboon, fruits, scikit-image's chelsea) x the two shared paintings
and the demo's built-in one (``data.brushwork``) with the chosen defaults, as one picture
(``docs/images/style-gallery.jpg``).

``--speed``: seconds to reach the same style loss, against the PyTorch tutorial's procedure
(pytorch.org/tutorials/advanced/neural_style_tutorial: L-BFGS with its defaults and no line
search, the input clamped in the closure) on the same Lite0 features and the same objective, in
the same run (transferlab: L-BFGS with a strong-Wolfe line search and 50 history pairs).

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
from PIL import Image, ImageDraw

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import ROOT, SHARED
from transferlab.data.brushwork import swirl_painting
from transferlab.tasks.stylize import optimize
from transferlab.tasks.stylize.features import feature_network
from transferlab.tasks.stylize.losses import PerceptualLoss, gram

PAINTINGS = ("starry_night", "scream")
SWEEP = {  # name: options of the optimisation (style_layers: indices of the Lite0 stages, None = all five)
    "none, w5, all": {"smoothing": "none", "style_weight": 5.0},
    "none, w50, all": {"smoothing": "none", "style_weight": 50.0},
    "none, w50, stages 1-4": {"smoothing": "none", "style_weight": 50.0, "style_layers": (0, 1, 2, 3)},
    "none, w50, stages 2-5": {"smoothing": "none", "style_weight": 50.0, "style_layers": (1, 2, 3, 4)},
    "channel, w50, all": {"smoothing": "channel", "style_weight": 50.0},
    "none, w50, noise init": {"smoothing": "none", "style_weight": 50.0, "init": "noise"},
    "none, w50, adam 0.02": {"smoothing": "none", "style_weight": 50.0, "optimizer": "adam", "lr": 0.02},
    "none, w50, tv 1": {"smoothing": "none", "style_weight": 50.0, "tv_weight": 1.0},
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
    for name, setting in SWEEP.items():
        setting = dict(setting)
        layers = setting.pop("style_layers", None)
        opts = optimize.StylizeOptions(size=size, steps=evals, multiscale=False, **setting)
        image, trace = optimize.run(replace(net, style_layers=layers), content, [style], opts)
        with torch.no_grad():
            _, s, c = judge(image, target)
        print(f"| {name} | {float(s):.3f} | {float(c):.3f} | {trace.seconds:.0f} |", flush=True)
        images.append(to_pil(image))
    rows = [images[i : i + 4] for i in range(0, len(images), 4)]
    captions = [" / ".join(list(SWEEP)[i : i + 4]) for i in range(0, len(images), 4)]
    sheet(rows, captions, size, out / "sweep.jpg")


def run_gallery(net, size: int, evals: int, out: Path) -> None:
    content = photos(size)
    styles = {name: load(SHARED / "styles" / f"{name}.jpg", size) for name in PAINTINGS}
    styles["built-in"] = load(np.asarray(swirl_painting(size)), size)
    rows, labels = [[Image.new("RGB", (size, size), "white")] + [to_pil(s) for s in styles.values()]], ["paintings:"]
    opts = optimize.StylizeOptions(size=size, steps=evals)
    for name, photo in content.items():
        row = [to_pil(photo)]
        for style_name, style in styles.items():
            image, trace = optimize.run(net, photo, [style], opts)
            row.append(to_pil(image))
            print(f"{name} x {style_name}: {trace.seconds:.0f} s", flush=True)
        rows.append(row)
        labels.append(name)
    sheet(rows, labels, size, out)
    print(f"gallery: {out}")


def tutorial_procedure(objective: PerceptualLoss, content: torch.Tensor, evals: int) -> tuple[list, list]:
    """The tutorial's loop: ``LBFGS([input])`` with its defaults (no line search), the input clamped
    in the closure, ``while run[0] <= num_steps``; here on transferlab's objective, so that only
    the procedure differs."""
    target = objective.content_target(content)
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image])
    times, styles, count, start = [], [], [0], time.perf_counter()

    def closure() -> torch.Tensor:
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad()
        loss, style, _ = objective(image, target)
        loss.backward()
        count[0] += 1
        times.append(time.perf_counter() - start)
        styles.append(float(style.detach()))
        return loss

    while count[0] < evals:
        optimizer.step(closure)
    return times, styles


def run_speed(net, size: int, evals: int) -> None:
    content, style = photos(size)["chelsea"], load(SHARED / "styles" / "starry_night.jpg", size)
    opts = optimize.StylizeOptions(size=size, steps=evals, multiscale=False)
    grams = [gram(f) for f in net.layers(style)]
    objective = PerceptualLoss(net.layers, net.content_layer, grams, (opts.style_weight, opts.content_weight, 0.0))
    ref_times, ref_styles = tutorial_procedure(objective, content, evals)
    _, trace = optimize.run(net, content, [style], opts)
    target = max(min(ref_styles), min(trace.style))  # the style loss both procedures reached
    first = [next(t for t, s in zip(times, styles) if s <= target) for times, styles in
             ((ref_times, ref_styles), (trace.times, trace.style))]  # fmt: skip
    print(f"\n{size} px, style weight {opts.style_weight:g}, {evals} evaluations each")
    print(f"tutorial procedure: {ref_times[-1]:.1f} s, final style loss {ref_styles[-1]:.4f}")
    print(f"transferlab: {trace.times[-1]:.1f} s, final style loss {trace.style[-1]:.4f}")
    print(f"seconds to style loss {target:.4f}: tutorial {first[0]:.1f} s, transferlab {first[1]:.1f} s "
          f"-> {first[0] / first[1]:.2f}x")  # fmt: skip


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
