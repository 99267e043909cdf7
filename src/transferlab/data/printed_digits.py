"""``printed-digits``: digits rendered from the fonts matplotlib ships, in scikit-learn's format.

A source domain for digit transfer that needs no download: each image is one digit drawn in one
of matplotlib's TrueType fonts (DejaVu Sans/Serif/Mono, STIX, Computer Modern, with bold and
italic cuts), at a random size, stroke width, rotation and offset, then reduced exactly as
scikit-learn's handwritten ``digits`` were: a 32x32 bitmap averaged down to 8x8 and quantised to
17 grey levels (0 = background). Printed and handwritten digits share labels but not style,
which makes them a real domain pair.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from transferlab.data.collections import ArrayImages

FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf", "STIXGeneralBolIta.ttf",
    "cmr10.ttf", "cmss10.ttf", "cmtt10.ttf", "cmti10.ttf", "cmb10.ttf",
)  # fmt: skip


@cache
def _font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(_font_dir() / name), size)


def render_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
    """One 8x8 image, values 0..16 (as scikit-learn's digits), of ``digit`` in a random style."""
    font = _font(FONT_FILES[rng.integers(len(FONT_FILES))], int(rng.integers(40, 56)))
    canvas = Image.new("L", (80, 80), 0)
    draw = ImageDraw.Draw(canvas)
    stroke = int(rng.integers(0, 3))
    draw.text((40, 40), str(digit), fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255)
    canvas = canvas.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR)
    glyph = canvas.crop(canvas.getbbox() or (0, 0, 80, 80))
    # Like the handwritten set, glyphs are stretched to fill the frame (aspect not kept).
    height = int(rng.integers(26, 32))
    width = int(rng.integers(12, 20)) if digit == 1 else int(rng.integers(20, 30))
    glyph = glyph.resize((width, height), Image.BILINEAR)
    frame = Image.new("L", (32, 32), 0)
    dx, dy = rng.integers(-2, 3, size=2)
    frame.paste(glyph, ((32 - glyph.width) // 2 + int(dx), (32 - glyph.height) // 2 + int(dy)))
    small = np.asarray(frame, dtype=np.float64).reshape(8, 4, 8, 4).mean(axis=(1, 3))
    return np.rint(small / 255 * 16)


def printed_digits(n: int, seed: int) -> ArrayImages:
    """``n`` printed digits, balanced over 0-9, as 8x8 uint8 images scaled to 0..255."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = np.stack([render_digit(int(d), rng) for d in labels])
    return ArrayImages(np.rint(images * (255 / 16)).astype(np.uint8), labels)
