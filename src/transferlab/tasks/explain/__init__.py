"""``explain``: which pixels a model's decision rests on, as class activation maps over whole images.

    from transferlab import explain
    found = explain.explain(["photo.jpg"], run="runs/classify/my-run", out="maps/")
    found[0].peak, found[0].class_name, found[0].score
    explain.explain(["scene.png"], run="runs/segment/my-run", class_name="car", method="gradcam++")

For each image: ``NAME_cam.png`` (the map blended over the image), ``NAME_cam.npy`` (the map, in
[0, 1], in the image's own pixels); for a segmenter also ``NAME_uncertainty.png/.npy`` (the per-pixel
entropy of its class probabilities).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from transferlab.data.images import BadImage, collect_images, load_rgb, warn_skipped
from transferlab.errors import DataError, UsageError
from transferlab.io import atomic_path
from transferlab.progress import track
from transferlab.tasks.explain.cam import METHODS, class_maps, get_method
from transferlab.tasks.explain.subjects import REPORT_CELLS, SUBJECTS, Subject, load_subject

__all__ = ["METHODS", "SUBJECTS", "Explanation", "Map", "ReportMap", "explain", "heat_overlay", "maps_of", "overlays",
           "peak_of", "report_maps"]  # fmt: skip


@dataclass
class Explanation:
    """One explained image: the class the map explains, the model's score for it, the method, the
    map's peak (x, y) in the image's pixels, and the files written."""

    path: str
    class_name: str
    class_index: int
    score: float
    method: str
    peak: tuple[int, int]
    files: dict[str, str]
    uncertainty: float | None = None  # segmenters: the mean per-pixel entropy (0 sure, 1 no idea)
    boxes: list[dict[str, Any]] | None = None  # detectors: label, score, box and the map's peak in it

    def as_dict(self) -> dict[str, Any]:
        found = {
            "path": self.path, "class": self.class_name, "class_index": self.class_index,
            "score": round(self.score, 6), "method": self.method, "peak": list(self.peak), "files": self.files,
        }  # fmt: skip
        if self.uncertainty is not None:
            found["mean_uncertainty"] = round(self.uncertainty, 6)
        if self.boxes is not None:
            found["boxes"] = self.boxes
        return found


def heat_overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A map in [0, 1] (H x W, the image's size) drawn in the 'jet' colours over the image; the
    photo stays visible where the map is low (its weight grows with the map)."""
    from matplotlib import colormaps

    colours = colormaps["jet"](heat)[..., :3] * 255
    weight = alpha * (0.35 + 0.65 * heat[..., None])
    blended = (1 - weight) * np.asarray(image, dtype=np.float32) + weight * colours
    return blended.clip(0, 255).astype(np.uint8)


def _class_index(subject: Subject, class_name: str | None) -> int | None:
    """``--class``: a class name of the model (or its number), else None (the prediction)."""
    if class_name is None:
        return None
    if class_name in subject.class_names:
        return subject.class_names.index(class_name)
    if class_name.isdigit() and int(class_name) < len(subject.class_names):
        return int(class_name)
    close = difflib.get_close_matches(class_name, subject.class_names, n=3)
    listed = ", ".join(close or subject.class_names[:8]) + (
        " ..." if not close and len(subject.class_names) > 8 else ""
    )
    raise UsageError(
        f"the model has no class '{class_name}'", f"{'did you mean' if close else 'its classes'}: {listed}"
    )


def _to_image(values: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """A map at the input's size (H' x W') -> the image's own pixels (H x W), in [0, 1]."""
    return (
        F.interpolate(values[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
        .clamp(0, 1)
        .numpy()
    )


def peak_of(heat: np.ndarray) -> tuple[int, int]:
    """Where a map (H x W) is highest, as (x, y)."""
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return int(x), int(y)


def _peak_in(heat: np.ndarray, box: list[float]) -> list[int]:
    """The map's peak (x, y) inside a box (x1, y1, x2, y2), in the image's pixels."""
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    part = heat[y1 : max(y1 + 1, int(np.ceil(box[3]))), x1 : max(x1 + 1, int(np.ceil(box[2])))]
    if not part.size:
        return [x1, y1]
    x, y = peak_of(part)
    return [x1 + x, y1 + y]


def _unique_stem(path: Path, used: set[str]) -> str:
    stem, n = path.stem, 2
    while stem in used:
        stem, n = f"{path.stem}-{n}", n + 1
    used.add(stem)
    return stem


def _write(out: Path, stem: str, kind: str, image: Image.Image, heat: np.ndarray) -> dict[str, str]:
    files = {}
    for suffix, write in (("png", lambda t: Image.fromarray(heat_overlay(image, heat)).save(t, format="PNG")),
                          ("npy", lambda t: np.save(t, heat.astype(np.float32)))):  # fmt: skip
        target = out / f"{stem}_{kind}.{suffix}"
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            write(handle)
        files[f"{kind}_{suffix}"] = str(target)
    return files


def explain(
    inputs: list[str | Path],
    *,
    run: str | Path | None = None,
    model: str | None = None,
    weights: str | Path | None = None,
    method: str | None = None,
    class_name: str | None = None,
    size: int | None = None,
    out: str | Path = "explained",
    batch_size: int = 8,
) -> list[Explanation]:
    """Explain every image (any size, the whole image) with ``method``'s map (default: gradcam;
    eigencam for detectors) of the predicted class (or ``class_name``) of a classifier, segmenter
    or detector run, or an ImageNet model by name (``model``). ``size``: the shorter side images
    are run at (default: the model's, grown until the map has 14 cells a side, to at most 3x; a
    detector's: the longer side it evaluates at). Runs on the CPU: the maps take little time next
    to loading the network for the few images one looks at."""
    if method is not None:
        get_method(method)
    if batch_size < 1 or (size is not None and size < 32):
        raise UsageError("--batch-size must be at least 1 and --size at least 32", "e.g. --size 224 --batch-size 8")
    paths = collect_images([Path(p) for p in inputs])
    subject = load_subject(Path(run) if run else None, model, Path(weights) if weights else None, size)
    chosen = get_method(method or (subject.methods or ("gradcam",))[0])
    if subject.methods and chosen.name not in subject.methods:
        raise UsageError(f"--method {chosen.name} does not apply to {subject.description}",
                         f"use --method {' or '.join(subject.methods)} (the default for it)")  # fmt: skip
    wanted = _class_index(subject, class_name)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    found, used, bad = [], set(), []
    # a chunk of images at a time: any number of photos of any size without holding them all
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    for chunk in track(chunks, f"explaining ({chosen.name}, {CHUNK} images a step)", len(chunks)):
        decoded = []
        for path in chunk:
            try:
                decoded.append((path, load_rgb(path)))
            except BadImage as exc:
                bad.append(exc)
        maps = maps_of(subject, chosen, [image for _, image in decoded], wanted, batch_size, progress=False)
        found += _written(subject, chosen.name, decoded, maps, out, used)
    warn_skipped(bad)
    if not found:
        raise DataError("none of the given files is a usable image", "pass readable image files")
    return found


#: Images decoded, explained and written together by ``explain``.
CHUNK = 32


def _written(subject: Subject, method: str, decoded: list, maps: list, out: Path, used: set) -> list[Explanation]:
    """The files of each explained image, and what ``--json`` says of it."""
    found = []
    for (path, image), found_map in zip(decoded, maps):
        stem = _unique_stem(path, used)
        files = _write(out, stem, "cam", image, found_map.heat)
        if found_map.uncertainty is not None:
            files |= _write(out, stem, "uncertainty", image, found_map.uncertainty)
        mean_entropy = None if found_map.uncertainty is None else float(found_map.uncertainty.mean())
        boxes = [{**b, "peak": _peak_in(found_map.heat, b["box"])} for b in found_map.boxes or []]
        found.append(Explanation(str(path), subject.class_names[found_map.class_index], found_map.class_index,
                                 found_map.score, method, peak_of(found_map.heat), files, mean_entropy,
                                 boxes if found_map.boxes is not None else None))  # fmt: skip
    return found


@dataclass
class Map:
    """One image's map (H x W in [0, 1], the image's pixels), the class it explains and its score;
    for segmenters the per-pixel uncertainty too."""

    heat: np.ndarray
    class_index: int
    score: float
    uncertainty: np.ndarray | None = None
    boxes: list[dict[str, Any]] | None = None  # detectors: each box explained (its map is within it)


def maps_of(
    subject: Subject, method: Any, images: list[Image.Image], wanted: int | list[int] | None = None,
    batch_size: int = 8, progress: bool = True,
) -> list[Map]:  # fmt: skip
    """``method``'s map of each whole image (in order), of class ``wanted`` (one for all, or one
    per image) or the predicted one."""
    classes = wanted if isinstance(wanted, list) else [wanted] * len(images)
    # images of one input size go through together (whole images keep their aspect, so sizes differ)
    groups: dict[tuple[int, ...], list[int]] = {}
    inputs = [subject.prepare(image) for image in images]
    for n, x in enumerate(inputs):
        groups.setdefault(tuple(x.shape), []).append(n)
    batches = [group[i : i + batch_size] for group in groups.values() for i in range(0, len(group), batch_size)]
    found: dict[int, Map] = {}
    for batch in track(batches, f"explaining ({method.name})", len(batches)) if progress else batches:
        x = torch.stack([inputs[n] for n in batch])
        with torch.no_grad():
            outputs = subject.outputs(x)
        targets, chosen, scores = subject.targets(outputs, [classes[n] for n in batch])
        heats = class_maps(method, subject.model, subject.layer, x, targets)
        uncertain = subject.uncertainty(outputs) if subject.uncertainty else None
        for k, n in enumerate(batch):
            size, boxes = (images[n].height, images[n].width), None
            if subject.boxes is not None:  # a detector: the map within each box, boxes in the image's pixels
                heats[k], boxes = subject.boxes(heats[k], outputs[k])
                ratio = images[n].width / x.shape[-1]
                boxes = [{**b, "box": [round(v * ratio, 1) for v in b["box"]]} for b in boxes]
            found[n] = Map(_to_image(torch.from_numpy(heats[k]), size), chosen[k], scores[k],
                           None if uncertain is None else _to_image(uncertain[k], size), boxes)  # fmt: skip
    return [found[n] for n in range(len(images))]


@dataclass
class ReportMap:
    """What a run's report shows of one image: the map blended over it, the method, the class the
    map explains, and for segmenters the uncertainty (entropy) blended over it."""

    picture: Image.Image
    method: str
    class_index: int
    uncertainty: Image.Image | None = None


def report_maps(run: str | Path, images: list[Image.Image], method: str | None = None) -> list[ReportMap]:
    """``method``'s map (the run kind's default: Grad-CAM, EigenCAM for detectors) of the run's
    prediction over each whole image, at the reports' map resolution, quietly (no progress bar)."""
    subject = load_subject(Path(run), None, None, None, REPORT_CELLS)
    chosen = get_method(method or (subject.methods or ("gradcam",))[0])
    pictures = [image.convert("RGB") for image in images]
    found = []
    for picture, m in zip(pictures, maps_of(subject, chosen, pictures, progress=False)):
        uncertainty = None if m.uncertainty is None else Image.fromarray(heat_overlay(picture, m.uncertainty))
        found.append(ReportMap(Image.fromarray(heat_overlay(picture, m.heat)), chosen.name, m.class_index, uncertainty))
    return found


def overlays(run: str | Path, images: list[Image.Image], method: str | None = None) -> list[Image.Image]:
    """The images with ``method``'s map of a run's prediction blended over each: the pictures a
    run's report shows beside its hardest or held-out images."""
    return [m.picture for m in report_maps(run, images, method)]
