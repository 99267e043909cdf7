"""Where do the maps of `transferlab explain` point? The pointing game on the kangaroo photos (164
photos with boxes; one truncated JPEG is skipped): the ImageNet Lite0 classifier's map of the class
"wallaby, brush kangaroo" for every photo, a hit when its peak falls inside a boxed kangaroo;
against the image centre as a map, per method at the default size and per input size for the
default method; the sanity check (Adebayo et al. 2018) as the rank correlation between the trained
network's maps and those of the same network with random weights; and the time an image takes.

    .venv/bin/python benchmarks/explain_pointing.py [--methods gradcam,gradcam++,layercam,eigencam]
        [--sizes 128,224,320,448] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import tarfile
import tempfile
import time
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import numpy as np
from PIL import Image

from common import SHARED

WALLABY = "wallaby, brush kangaroo"


def kangaroos(root: Path, limit: int | None) -> list[tuple[Path, list[tuple[float, ...]]]]:
    with tarfile.open(SHARED / "kangaroo.tar.gz") as archive:
        archive.extractall(root, filter="data")
    found = []
    for xml in sorted(root.rglob("*.xml")):
        tree = ET.parse(xml)
        image = next(root.rglob(tree.findtext("filename")), None)
        try:
            Image.open(image).load()
        except (OSError, AttributeError, TypeError):
            continue  # the truncated JPEG
        boxes = [tuple(float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
                 for o in tree.iter("object")]  # fmt: skip
        found.append((image, boxes))
    return found[:limit]


def inside(point: tuple[float, float], boxes: list[tuple[float, ...]]) -> bool:
    return any(x0 <= point[0] <= x1 and y0 <= point[1] <= y1 for x0, y0, x1, y1 in boxes)


def pointing(explained: list, photos: list) -> float:
    return float(np.mean([inside(e.peak, boxes) for e, (_, boxes) in zip(explained, photos)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="gradcam,gradcam++,layercam,eigencam")
    parser.add_argument("--sizes", default="128,224,320,448")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    from scipy.stats import spearmanr

    from transferlab.tasks.explain import explain

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        photos = kangaroos(Path(tmp) / "data", args.limit)
        images = [p for p, _ in photos]
        centres = [(Image.open(p).width / 2, Image.open(p).height / 2) for p in images]
        centre_hits = float(np.mean([inside(c, b) for c, (_, b) in zip(centres, photos)]))
        print(f"{len(photos)} photos; centre baseline: {centre_hits:.3f}")
        rows = []
        for method in args.methods.split(","):
            started = time.perf_counter()
            found = explain(images, model="tf_efficientnet_lite0", class_name=WALLABY, method=method,
                            out=Path(tmp) / method)  # fmt: skip
            seconds = (time.perf_counter() - started) / len(images)
            rows.append((method, "default (224)", pointing(found, photos), seconds))
            print(rows[-1], flush=True)
            if method == "gradcam":
                trained = found
        for size in map(int, args.sizes.split(",")):
            found = explain(images, model="tf_efficientnet_lite0", class_name=WALLABY, size=size,
                            out=Path(tmp) / f"size{size}")  # fmt: skip
            rows.append(("gradcam", str(size), pointing(found, photos), float("nan")))
            print(rows[-1], flush=True)
        random = explain(images, model="tf_efficientnet_lite0:random", class_name="104", out=Path(tmp) / "random")
        rho = [
            spearmanr(np.load(a.files["cam_npy"])[::4, ::4].ravel(), np.load(b.files["cam_npy"])[::4, ::4].ravel())[0]
            for a, b in zip(trained, random)
        ]
        print("\n| method | shorter side | pointing game | s / image |\n| --- | --- | --- | --- |")
        for method, size, hits, seconds in rows:
            print(f"| {method} | {size} | {hits:.3f} | {seconds:.2f} |")
        print(f"| centre of the image | - | {centre_hits:.3f} | - |")
        print(f"| gradcam, random weights | 224 | {pointing(random, photos):.3f} | - |")
        print(f"\nrank correlation trained vs random-weight maps (gradcam): mean {np.nanmean(rho):.3f}, "
              f"median {np.nanmedian(rho):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
