"""A painting made by code: impasto brush strokes that follow a swirling flow field.

Style transfer needs a painting, and none may ship with the package (the public-domain ones a
user would pick are in nobody's wheel). This one is drawn on the spot, so the offline demo has a
style with what Gram-matrix losses feed on: bold, outlined strokes in a small palette of
ultramarine, cobalt and chrome yellow, curling around a few vortices.

Flow: ``v(p) = d + sum_i s_i * size * k * perp(p - c_i) / (|p - c_i|^2 + eps)^1.5``, a drift
``d`` plus point vortices at ``c_i`` of spin ``s_i``. Each stroke starts at a random point and
is traced along ``v`` in steps of ``STEP`` px; three layers go from broad to fine strokes, each
drawn as a dark outline under its colour, as a painter's impasto catches shadow.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

#: Night blues, a green shadow and chrome yellows, dark to light: the colour field indexes it.
PALETTE = np.array(
    [[20, 24, 40], [16, 32, 84], [28, 60, 140], [52, 96, 178], [96, 146, 200], [70, 120, 90],
     [232, 200, 72], [248, 232, 150]], dtype=np.float64
)  # fmt: skip
#: (strokes, width in px, steps), broad to fine, for a 256 px canvas.
LAYERS = ((900, 7, 14), (2200, 4, 10), (2500, 2, 7))
STEP = 2.5
VORTICES = 4


def _flow_angle(x: np.ndarray, y: np.ndarray, centres: np.ndarray, spins: np.ndarray, size: int) -> np.ndarray:
    vx, vy = np.full_like(x, 0.6), np.zeros_like(y)
    for (cx, cy), spin in zip(centres, spins, strict=True):
        dx, dy = x - cx, y - cy
        r2 = dx * dx + dy * dy + 200.0  # eps keeps the vortex cores finite
        w = spin * size * 8.0 / r2**1.5
        vx, vy = vx - dy * w, vy + dx * w
    return np.arctan2(vy, vx)


def _trace(x: np.ndarray, y: np.ndarray, steps: int, flow: dict) -> np.ndarray:
    """All strokes of a layer at once: points ``(strokes, steps + 1, 2)``."""
    points = [np.stack([x, y], axis=1)]
    for _ in range(steps):
        angle = _flow_angle(x, y, **flow)
        x, y = x + STEP * np.cos(angle), y + STEP * np.sin(angle)
        points.append(np.stack([x, y], axis=1))
    return np.stack(points, axis=1)


def swirl_painting(size: int = 256, seed: int = 0) -> Image.Image:
    """A ``size`` x ``size`` RGB painting; the same ``seed`` gives the same picture."""
    rng = np.random.default_rng(seed)
    scale = size / 256
    flow = {
        "centres": np.stack([rng.uniform(0, size, VORTICES), rng.uniform(0, size * 0.7, VORTICES)], axis=1),
        "spins": rng.choice([-1.0, 1.0], VORTICES) * rng.uniform(0.6, 1.0, VORTICES),
        "size": size,
    }
    # A low-frequency field picks each stroke's colour, so colours gather in patches as in a painting.
    field = Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    field = np.asarray(field, dtype=np.float64) / 255
    canvas = Image.new("RGB", (size, size), tuple(int(c) for c in PALETTE[2]))
    draw = ImageDraw.Draw(canvas)
    for count, width, steps in LAYERS:
        count = int(count * scale * scale)
        x, y = rng.uniform(0, size, count), rng.uniform(0, size, count)
        level = field[y.astype(int), x.astype(int)] + rng.normal(0, 0.15, count)
        index = np.clip(level * 7.99, 0, 7).astype(int)
        index[rng.random(count) < 0.08] = 6 + rng.integers(0, 2)  # scattered highlights, one yellow a layer
        colours = np.clip(PALETTE[index] + rng.normal(0, 14, (count, 3)), 0, 255)
        stroke_width = max(1, round(width * scale))
        for points, colour in zip(_trace(x, y, steps, flow), colours, strict=True):
            line = [tuple(p) for p in points.tolist()]
            draw.line(line, fill=tuple(int(c * 0.45) for c in colour), width=stroke_width + 2, joint="curve")
            draw.line(line, fill=tuple(int(c) for c in colour), width=stroke_width, joint="curve")
    return canvas
