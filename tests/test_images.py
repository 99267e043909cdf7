"""Decoding single images: modes, EXIF, truncation, decompression bombs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transferlab.data import images
from transferlab.data.images import BadImage, array_to_rgb, load_rgb


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "1", "RGB", "LA"])
def test_every_mode_becomes_rgb(tmp_path, mode):
    path = tmp_path / f"x_{mode}.{'tif' if mode == 'CMYK' else 'png'}"
    Image.new("RGB", (10, 6), (120, 60, 30)).convert(mode).save(path)
    out = load_rgb(path)
    assert out.mode == "RGB" and out.size == (10, 6)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = (255, 0, 0, 255)  # opaque red top half, transparent bottom half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = np.asarray(load_rgb(tmp_path / "a.png"))
    assert (out[0, 0] == (255, 0, 0)).all() and (out[3, 3] == (255, 255, 255)).all()


def test_palette_with_transparency(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    image.putpixel((0, 0), 1)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    out = np.asarray(load_rgb(tmp_path / "p.png"))
    assert tuple(out[0, 0]) == (10, 200, 10) and tuple(out[2, 2]) == (255, 255, 255)


def test_16_bit_is_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out = np.asarray(load_rgb(tmp_path / "deep.png"))[..., 0]
    assert out.min() == 0 and out.max() == 255
    assert len(np.unique(out)) > 50  # clipping would leave almost everything at 255


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    image.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "rot.jpg").size == (20, 40)


def test_truncated_file_is_bad(tmp_path):
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadImage, match="unreadable"):
        load_rgb(tmp_path / "cut.jpg")


def test_non_image_is_bad(tmp_path):
    (tmp_path / "notes.jpg").write_text("hello")
    with pytest.raises(BadImage, match="not an image"):
        load_rgb(tmp_path / "notes.jpg")


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    Image.new("1", (12_000, 8_000)).save(tmp_path / "huge.png")  # 96 M pixels, a few KB on disk
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(BadImage, match="refused"):
        load_rgb(tmp_path / "huge.png")
    assert not decoded


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    Image.new("RGB", (20, 10)).save(tmp_path / "small.png")
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 199)
    with pytest.raises(BadImage, match="200 pixels"):
        load_rgb(tmp_path / "small.png")


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((5, 6), np.uint8), ((5, 6, 1), np.uint8), ((5, 6, 3), np.uint8), ((3, 5, 6), np.float32), ((5, 6, 4), np.uint8)],
)
def test_arrays_become_rgb(shape, dtype):
    out = array_to_rgb(np.ones(shape, dtype))
    assert out.mode == "RGB" and out.size == (6, 5)
