"""The demo's style section (``tasks.demo.style_demo``: chelsea at 256 px, 100 L-BFGS
evaluations, Lite0 features, the defaults) with each candidate style image that may ship offline:

- ``micrograph``: scikit-image's immunohistochemistry slide (the demo's style before);
- ``built-in``: the painting ``data.brushwork`` draws on the spot (the demo's style now);
- ``starry_night``: the shared Van Gogh, for reference (it may not ship).

For each: seconds, the style loss at the first and last evaluation, and how far the result moved
from the photo (mean absolute pixel change, 0-255). Results side by side in
docs/images/demo-style.jpg.

    .venv/bin/python benchmarks/demo_style.py
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import ROOT, SHARED, side_by_side


def candidates(folder: Path) -> dict[str, Path | None]:
    """Style images by name; None is the demo's own (the built-in painting)."""
    from skimage import data as skdata

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(skdata.immunohistochemistry()).resize((256, 256), Image.BICUBIC).save(folder / "micrograph.png")
    return {
        "micrograph": folder / "micrograph.png",
        "built-in": None,
        "starry_night": SHARED / "styles" / "starry_night.jpg",
    }


def main() -> None:
    from transferlab.tasks.demo import style_demo

    folder = ROOT / ".bench-cache" / "demo-style"
    styles = candidates(folder)
    images = []
    print("| style image | seconds | style loss, first -> last | pixel change from the photo |")
    print("| --- | --- | --- | --- |")
    for name, style in styles.items():
        start = time.perf_counter()
        result = style_demo(folder / name, style)
        seconds = time.perf_counter() - start
        photo = np.asarray(Image.open(result.image.parent / "chelsea.png"), dtype=np.float64)
        change = np.abs(np.asarray(Image.open(result.image), dtype=np.float64) - photo).mean()
        losses = result.trace.style
        print(f"| {name} | {seconds:.1f} | {losses[0]:.3g} -> {losses[-1]:.3g} | {change:.1f} |", flush=True)
        images.append(result.image)
    side_by_side(images, list(styles), ROOT / "docs" / "images" / "demo-style.jpg")


if __name__ == "__main__":
    main()
