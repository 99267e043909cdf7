"""The demo's style section, with each candidate style image that may ship offline: chelsea (256 px,
100 L-BFGS evaluations, Lite0 features, the defaults) painted with

- ``micrograph``: scikit-image's immunohistochemistry slide (the demo's style before);
- ``built-in``: the painting ``data.brushwork`` draws on the spot (the demo's style now);
- ``starry_night``: the shared Van Gogh, for reference (it may not ship).

For each: seconds, the style loss at the first and last evaluation, and how far the result moved
from the photo (mean absolute pixel change, 0-255). Panels side by side in
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


def candidates(folder: Path) -> dict[str, Path]:
    from skimage import data as skdata

    from transferlab.data.brushwork import swirl_painting

    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(skdata.immunohistochemistry()).resize((256, 256), Image.BICUBIC).save(folder / "micrograph.png")
    swirl_painting(256).save(folder / "built-in.png")
    return {
        "micrograph": folder / "micrograph.png",
        "built-in": folder / "built-in.png",
        "starry_night": SHARED / "styles" / "starry_night.jpg",
    }


def main() -> None:
    from skimage import data as skdata

    from transferlab.tasks import stylize

    folder = ROOT / ".bench-cache" / "demo-style"
    content = folder / "chelsea.png"
    styles = candidates(folder)
    Image.fromarray(skdata.chelsea()).resize((256, 170), Image.BICUBIC).save(content)
    photo = np.asarray(Image.open(content), dtype=np.float64)
    print("| style image | seconds | style loss, first -> last | pixel change from the photo |")
    print("| --- | --- | --- | --- |")
    for name, style in styles.items():
        start = time.perf_counter()
        result = stylize.stylize(content, [style], out=folder / name, size=256, steps=100, multiscale=False)
        seconds = time.perf_counter() - start
        change = np.abs(np.asarray(Image.open(result.image), dtype=np.float64) - photo).mean()
        style_loss = result.trace.style
        print(f"| {name} | {seconds:.1f} | {style_loss[0]:.3g} -> {style_loss[-1]:.3g} | {change:.1f} |", flush=True)
    side_by_side(
        [folder / name / "stylized.png" for name in styles], list(styles), ROOT / "docs" / "images" / "demo-style.jpg"
    )


if __name__ == "__main__":
    main()
