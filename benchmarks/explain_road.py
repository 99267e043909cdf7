"""Are the maps of `transferlab explain` faithful to the model? ROAD (Rong et al. 2022, "A Consistent
and Efficient Evaluation Strategy for Attribution Methods"), as pytorch-grad-cam implements it: the
pixels a map ranks highest are removed (imputed from their neighbours by its noisy linear imputer,
so that the removal leaves no shape for the network to read) and the class probability is watched;
then the lowest ranked ones. The score is (drop removing the least relevant - drop removing the most
relevant) / 2, averaged over removal shares: higher is more faithful.

The ImageNet Lite0 and the class "wallaby, brush kangaroo" on the shared kangaroo photos (as
`explain_pointing.py`), at 224 px (7 map cells: the imputer solves a sparse system per image and
share, 1 s at 224 px and far more at 448), shares 20/50/80% (the library's default is nine).
Baselines: a random map on the same 7 x 7 grid (upsampled as a CAM is) and a centred Gaussian.

    cd benchmarks && ../.venv/bin/python explain_road.py [--limit 30] [--methods gradcam,gradcam++,eigencam]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import numpy as np
import torch
from PIL import Image

from explain_pointing import WALLABY, kangaroos

SIZE, SHARES = 224, [20, 50, 80]


def random_map(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """Random values on a ``cells``-a-side grid, upsampled bilinearly: a map with a CAM's coarseness."""
    grid = torch.from_numpy(rng.random((1, 1, cells, cells), dtype=np.float32))
    return torch.nn.functional.interpolate(grid, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def centre_map(shape: tuple[int, int]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-(((yy - shape[0] / 2) / (shape[0] / 4)) ** 2 + ((xx - shape[1] / 2) / (shape[1] / 4)) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--methods", default="gradcam,gradcam++,eigencam")
    args = parser.parse_args()
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    from transferlab.tasks.explain.cam import class_maps, get_method
    from transferlab.tasks.explain.subjects import classifier

    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    subject = classifier(None, "tf_efficientnet_lite0", None, SIZE)
    wallaby = subject.class_names.index(WALLABY)
    road = ROADCombined(percentiles=SHARES)
    scores: dict[str, list[float]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        photos = kangaroos(Path(tmp), args.limit)
        for n, (path, _) in enumerate(photos):
            x = subject.prepare(Image.open(path).convert("RGB"))[None]
            shape = tuple(x.shape[-2:])
            target = [ClassifierOutputSoftmaxTarget(wallaby)]
            maps = {m: class_maps(get_method(m), subject.model, subject.layer, x, target)[0]
                    for m in args.methods.split(",")}  # fmt: skip
            maps["random map (7 x 7 cells)"] = random_map(shape, 7, rng)
            maps["the image's centre"] = centre_map(shape)
            for name, heat in maps.items():
                with torch.no_grad():
                    value = road(x, heat[None], target, subject.model)
                scores.setdefault(name, []).append(float(value[0]))
            print(f"{n + 1}/{len(photos)} {time.perf_counter() - started:.0f} s", flush=True)
    print(f"\nROAD on {len(photos)} kangaroo photos at {SIZE} px, shares {SHARES} (higher: more faithful)")
    print("| map | ROAD score (mean) | median | wins over the random map |\n| --- | --- | --- | --- |")
    rand = scores["random map (7 x 7 cells)"]
    for name, values in scores.items():
        wins = np.mean([v > r for v, r in zip(values, rand)])
        print(f"| {name} | {statistics.mean(values):.4f} | {statistics.median(values):.4f} | {wins:.2f} |")


if __name__ == "__main__":
    main()
