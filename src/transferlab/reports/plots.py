"""Plots as PNG files (matplotlib, headless): curves, confusion matrices, image galleries."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from transferlab.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, title: str = "") -> Path:
    """Write the figure atomically."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".") or "png")
    _pyplot().close(fig)
    return path


def learning_curves(histories: dict[str, list[dict]], path: Path, title: str = "") -> Path:
    """Loss and accuracy per epoch; one line per run (train dashed, validation solid)."""
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (name, history) in enumerate(histories.items()):
        color = f"C{i}"
        epochs = [row["epoch"] for row in history]
        ax_loss.plot(epochs, [row["train_loss"] for row in history], "--", color=color, alpha=0.7)
        validated = [row for row in history if "val_loss" in row]
        ax_loss.plot([r["epoch"] for r in validated], [r["val_loss"] for r in validated], "-", color=color, label=name)
        train_acc = [row.get("train_acc", math.nan) for row in history]
        if not all(math.isnan(a) for a in train_acc):
            ax_acc.plot(epochs, train_acc, "--", color=color, alpha=0.7)
        ax_acc.plot([r["epoch"] for r in validated], [r["val_acc"] for r in validated], "-", color=color, label=name)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss (dashed: train)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy (dashed: train)", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    ax_acc.legend(loc="lower right", fontsize=8)
    return _save(fig, path, title)


def loss_curves(series: dict[str, list[float]], path: Path, xlabel: str = "step", log: bool = True) -> Path:
    """Several loss series (one value per step), on a log scale unless ``log`` is off."""
    return metric_curves(
        {name: (list(range(1, len(v) + 1)), v) for name, v in series.items()}, path, "loss", xlabel, log
    )


def metric_curves(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    path: Path,
    ylabel: str,
    xlabel: str = "step",
    log: bool = False,
) -> Path:
    """Several (x, y) series on one axis, e.g. FID against the training step."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, (x, y) in series.items():
        ax.plot(x, y, label=name, marker="o" if len(x) < 30 else None)
    ax.set(xlabel=xlabel, ylabel=ylabel, yscale="log" if log else "linear")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def confusion_matrix(matrix: Sequence[Sequence[int]], classes: list[str], path: Path) -> Path:
    plt = _pyplot()
    m = np.asarray(matrix)
    k = len(classes)
    size = min(14, max(4.5, 0.45 * k + 2))
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    normalised = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), classes, rotation=90 if k > 8 else 0, fontsize=8)
        ax.set_yticks(range(k), classes, fontsize=8)
        for (r, c), count in np.ndenumerate(m):
            if count:
                ax.text(
                    c,
                    r,
                    str(count),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if normalised[r, c] > 0.5 else "black",
                )
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (rows: true class)")
    return _save(fig, path)


def heatmap(
    values: Sequence[Sequence[float]], rows: list[str], columns: list[str], path: Path, title: str = ""
) -> Path:
    """A table of numbers in [0, 1] as coloured cells, each with its value (red low, green high)."""
    plt = _pyplot()
    m = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(1.1 * len(columns) + 2.6, 0.38 * len(rows) + 1.4))
    ax.imshow(m, cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    for (r, c), value in np.ndenumerate(m):
        ax.text(c, r, f"{value:.3f}", ha="center", va="center", fontsize=7)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


#: Each gallery picture fits a square of this many pixels (the size the matplotlib version drew).
GALLERY_CELL = 208


@functools.cache
def _font(size: int):
    """matplotlib's DejaVu Sans (the plots' font) at ``size`` px, for text drawn with PIL."""
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def image_gallery(images: Sequence, captions: Sequence[str], path: Path, title: str = "", columns: int = 6) -> Path:
    """A grid of images (PIL or H x W (x 3) arrays), each under its caption (lines split on
    newlines). Drawn with PIL: a matplotlib figure took 0.6 s a gallery, and every run's report has
    two or three of them."""
    from PIL import Image, ImageDraw

    pictures = [Image.fromarray(np.asarray(i)) if isinstance(i, np.ndarray) else i for i in images]
    columns = max(1, min(columns, len(pictures)))
    rows = max(1, math.ceil(len(pictures) / columns))
    font, line = _font(10), 12
    lines = max([len(str(c).splitlines()) for c in captions] + [1])
    pad, caption_band, title_band = 6, lines * line + 4, 26 if title else 0
    tallest = max([GALLERY_CELL * p.height // max(p.size) for p in pictures] + [1])  # rows of wide pictures are lower
    cell_w, cell_h = GALLERY_CELL + pad, caption_band + tallest + pad
    sheet = Image.new("RGB", (columns * cell_w + pad, title_band + rows * cell_h + pad), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((sheet.width / 2, 6), title, fill="black", font=_font(13), anchor="mt")
    for k, (picture, caption) in enumerate(zip(pictures, captions)):
        left, top = pad + (k % columns) * cell_w, title_band + pad + (k // columns) * cell_h
        for n, text in enumerate(str(caption).splitlines()):
            draw.text((left + GALLERY_CELL / 2, top + n * line), text, fill="black", font=font, anchor="mt")
        scale = GALLERY_CELL / max(picture.size)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        # small images (digits, CIFAR) as crisp pixels, photos smoothly
        fitted = picture.convert("RGB").resize(size, Image.NEAREST if max(picture.size) < 64 else Image.BICUBIC)
        sheet.paste(fitted, (left + (GALLERY_CELL - size[0]) // 2, top + caption_band))  # right under its caption
    with atomic_path(path) as tmp:
        sheet.save(tmp, format=Path(path).suffix.lstrip(".") or "png")
    return path


def bar_chart(values: dict[str, float], path: Path, ylabel: str) -> Path:
    """One bar per name, in the given order."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(values) + 2), 3.6))
    ax.bar(range(len(values)), list(values.values()), color="C0")
    ax.set_xticks(range(len(values)), list(values), rotation=20, ha="right", fontsize=8)
    ax.set(ylabel=ylabel)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def rate_curve(
    rates: Sequence[float], smoothed: Sequence[float], chosen: float, rule: str, others: dict[str, float], path: Path
) -> Path:
    """The LR finder's smoothed loss against the rate (log axis), the suggestion marked, the other
    rules' picks dotted."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(rates, smoothed, color="C0")
    top = min(max(smoothed), 4 * min(smoothed) if min(smoothed) > 0 else max(smoothed))
    for i, (name, rate) in enumerate(sorted(others.items())):
        if name != rule:
            ax.axvline(rate, color=f"C{i + 2}", linestyle=":", label=f"{name}: {rate:.2g}")
    ax.axvline(chosen, color="C1", label=f"{rule} (suggested): {chosen:.2g}")
    ax.set(xscale="log", xlabel="learning rate (--lr)", ylabel="training loss (smoothed)",
           ylim=(min(smoothed) - 0.05 * abs(min(smoothed)), top), title="learning-rate finder")  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return _save(fig, path)
