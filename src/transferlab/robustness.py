"""Robustness to corrupted images: ImageNet-C's 15 corruptions at 5 severities (Hendrycks and
Dietterich 2019), applied on the fly, seeded, to the pixels a model sees; every task scores them
with its own metric.

The corruptions come from ``imagecorruptions-imaug``, the maintained fork of ``imagecorruptions``
(the reference code of the benchmark). The original 1.1.2 no longer runs: it imports
``pkg_resources`` (gone from current setuptools) and passes scikit-image's removed ``multichannel``.

    asked = robustness.Request.of("noise,blur", severities=(1, 5))     # None when nothing is asked
    result = asked.run(score, "accuracy", out_dir, "robustness of my-run")  # score(change) -> metric
"""

from __future__ import annotations

import difflib
import os
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from transferlab.errors import UsageError
from transferlab.progress import track

#: The four families of ImageNet-C, in its order.
GROUPS: dict[str, tuple[str, ...]] = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
CORRUPTIONS: tuple[str, ...] = tuple(name for names in GROUPS.values() for name in names)
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
SEEDED_BY_ARGUMENT = ("impulse_noise", "glass_blur")
#: Images below this side are corrupted at it and scaled back (the corruptions' lower limit).
MIN_SIDE = 32


def parse(spec: str | Sequence[str] | None) -> list[str]:
    """``--corruptions``: ``all`` (or empty), families (noise, blur, weather, digital) and single
    corruptions (``fog``, ``jpeg_compression``), comma-separated; in ImageNet-C's order."""
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec or []) if s.strip()]
    if not items or items == ["all"]:
        return list(CORRUPTIONS)
    chosen: set[str] = set()
    for item in items:
        if item in GROUPS:
            chosen.update(GROUPS[item])
        elif item in CORRUPTIONS:
            chosen.add(item)
        else:
            close = difflib.get_close_matches(item, [*GROUPS, *CORRUPTIONS], n=2)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise UsageError(f"unknown corruption '{item}'", f"{hint}use all, {', '.join(GROUPS)}, or one of the 15 "
                             "(e.g. fog, jpeg_compression)")  # fmt: skip
    return [name for name in CORRUPTIONS if name in chosen]


@dataclass(frozen=True)
class Request:
    """What ``--corruptions``, ``--severities`` and ``--seed`` ask of an ``evaluate``, checked; its
    ``run`` scores the task's metric under each and writes ``robustness.png`` and ``report.html``."""

    names: list[str]
    severities: list[int]
    seed: int

    @classmethod
    def of(cls, corruptions: str | Sequence[str] | None, severities: Sequence[int] = SEVERITIES,
           seed: int = 0) -> Request | None:  # fmt: skip
        """The request, or None where no corruption is asked for (bad values refused either way)."""
        names = parse(corruptions) if corruptions is not None else None
        checked = check_severities(list(severities))
        return None if names is None else cls(names, checked, seed)

    def run(
        self, score: Callable, metric: str, out_dir: Path, title: str, clean: float | None = None
    ) -> dict[str, Any]:
        result = evaluate(score, self.names, self.severities, self.seed, metric, clean)
        out_dir.mkdir(parents=True, exist_ok=True)
        write_report(result, out_dir, title)
        return result


def check_severities(severities: Sequence[int]) -> list[int]:
    wrong = [s for s in severities if s not in SEVERITIES]
    if wrong or not severities:
        raise UsageError(f"severities {list(severities)} are not within 1-5", "e.g. --severities 1,3,5")
    return sorted(set(severities))


def corrupt(pixels: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """One uint8 H x W x 3 image corrupted; the same (image, name, severity, seed) gives the same
    pixels in any process (the library draws from NumPy's global generator, seeded here)."""
    from imagecorruptions import corrupt as apply

    h, w = pixels.shape[:2]
    small = min(h, w) < MIN_SIDE
    if small:  # e.g. 28 px digits: corrupted at 32 px and scaled back
        from PIL import Image

        grown = max(1.0, MIN_SIDE / min(h, w))
        size = (round(w * grown), round(h * grown))
        pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))
    key = zlib.crc32(f"{seed}/{name}/{severity}".encode()) ^ zlib.crc32(pixels[::7, ::7].tobytes())
    state = np.random.get_state()
    np.random.seed(key)
    try:  # two corruptions draw from their own generator, seeded by argument
        extra = {"seed": key} if name in SEEDED_BY_ARGUMENT else {}
        out = np.asarray(apply(pixels, severity=severity, corruption_name=name, **extra)).astype(np.float32)
    finally:
        np.random.set_state(state)
    out = out[: pixels.shape[0], : pixels.shape[1]].clip(0, 255).astype(np.uint8)
    if small:
        from PIL import Image

        out = np.asarray(Image.fromarray(out).resize((w, h), Image.BILINEAR))
    return out


#: The corruptions ``--corrupt`` trains on: all but elastic_transform, which moves pixels away from
#: their mask or boxes, and glass_blur, which takes about a second an image on a CPU (its pixel loop).
TRAINING_CORRUPTIONS: tuple[str, ...] = tuple(n for n in CORRUPTIONS if n not in ("elastic_transform", "glass_blur"))


def corrupted_crops(images: list[Any], draw: Any, share: float) -> list[Any]:
    """Training augmentation (``--corrupt SHARE``): each uint8 3 x H x W crop, with probability
    ``share``, passed through one of :data:`TRAINING_CORRUPTIONS` at a severity of 1-5, all drawn
    from the step's ``draw`` (``engine.batches.BatchDraw``: the same crops corrupted alike on any
    number of processes); masks and boxes stay as they are."""
    import torch

    chance, which = draw.uniform().tolist(), draw.integers(0, len(TRAINING_CORRUPTIONS)).tolist()
    severity, seed = draw.integers(1, 6).tolist(), draw.integers(0, 2**31 - 1).tolist()
    out = []
    for image, c, w, level, key in zip(images, chance, which, severity, seed):
        if c < share:
            pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
            image = torch.from_numpy(corrupt(pixels, TRAINING_CORRUPTIONS[w], level, key)).permute(2, 0, 1)
        out.append(image)
    return out


def _corrupt_all(images: list[np.ndarray], name: str, severity: int, seed: int) -> list[np.ndarray]:
    return [corrupt(image, name, severity, seed) for image in images]


class Corrupter:
    """Corrupts batches of images in worker processes (the corruptions are NumPy and OpenCV on
    one core each; the model's forward pass runs in this process meanwhile)."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or max(1, min(4, (os.cpu_count() or 1)))
        self.pool = ProcessPoolExecutor(self.workers) if self.workers > 1 else None

    def __call__(self, images: list[np.ndarray], name: str, severity: int, seed: int) -> list[np.ndarray]:
        if self.pool is None:
            return _corrupt_all(images, name, severity, seed)
        chunk = max(1, -(-len(images) // (self.workers * 2)))
        parts = [images[i : i + chunk] for i in range(0, len(images), chunk)]
        corrupted = self.pool.map(partial(_corrupt_all, name=name, severity=severity, seed=seed), parts)
        return [image for part in corrupted for image in part]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def evaluate(
    score: Callable[[Callable[[list[np.ndarray]], list[np.ndarray]] | None], float],
    names: Sequence[str] = CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    metric: str = "accuracy",
    clean: float | None = None,
) -> dict[str, Any]:
    """``score(None)`` is the clean metric (or ``clean``, where the caller has it); ``score(change)``
    the metric when every image batch is passed through ``change`` first (a metric higher for
    better). Returns the table (corruption -> severity -> metric), the mean over all, per corruption
    and per family, and the relative drop against clean."""
    corrupter = Corrupter()
    try:
        clean = float(score(None) if clean is None else clean)
        table: dict[str, dict[str, float]] = {}
        cells = [(n, s) for n in names for s in severities]
        for name, severity in track(cells, "corrupting", len(cells)):
            value = score(lambda batch, n=name, s=severity: corrupter(batch, n, s, seed))
            table.setdefault(name, {})[str(severity)] = float(value)
    finally:
        corrupter.close()
    by_name = {n: float(np.mean(list(v.values()))) for n, v in table.items()}
    by_group = {g: float(np.mean([by_name[n] for n in ns if n in by_name])) for g, ns in GROUPS.items()
                if any(n in by_name for n in ns)}  # fmt: skip
    mean = float(np.mean(list(by_name.values())))
    drop = (clean - mean) / clean if clean > 0 else 0.0
    return {"metric": metric, "clean": clean, "mean": mean, "relative_drop": drop, "by_corruption": by_name,
            "by_family": by_group, "table": table, "severities": list(severities), "seed": seed}  # fmt: skip


def corrupted_split(split: Any, change: Callable[[list[np.ndarray]], list[np.ndarray]]) -> Any:
    """A dense task's split (a dataclass whose ``images`` are uint8 3 x H x W tensors, each at its
    own size) with ``change`` applied to its images, the rest (masks, boxes) as it was."""
    import torch

    arrays = [np.ascontiguousarray(image.permute(1, 2, 0).numpy()) for image in split.images]
    return replace(split, images=[torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1) for a in change(arrays)])


def write_report(result: dict[str, Any], out_dir: Path, title: str) -> Path:
    """``robustness.png`` (the corruption x severity heatmap) and ``report.html`` in ``out_dir``."""
    from transferlab.reports.html import HtmlReport
    from transferlab.reports.plots import heatmap

    names, severities = list(result["table"]), [str(s) for s in result["severities"]]
    values = [[result["table"][n][s] for s in severities] for n in names]
    title_line = f"{result['metric']} under corruption (clean {result['clean']:.3f})"
    picture = heatmap(values, [n.replace("_", " ") for n in names], [f"severity {s}" for s in severities],
                      out_dir / "robustness.png", title_line)  # fmt: skip
    report = HtmlReport(title)
    report.text(f"{result['metric']}: clean {result['clean']:.4f}, mean over {len(names)} corruptions x "
                f"{len(severities)} severities {result['mean']:.4f}, relative drop {result['relative_drop']:.1%} "
                f"(seed {result['seed']}).")  # fmt: skip
    report.image(picture, "metric per corruption and severity")
    table = result["table"]
    rows = [{"corruption": n, **{f"s{s}": table[n][s] for s in severities}, "mean": result["by_corruption"][n]}
            for n in names]  # fmt: skip
    report.table(rows)
    report.table([{"family": g, "mean": v} for g, v in result["by_family"].items()])
    return report.save(out_dir / "report.html")
