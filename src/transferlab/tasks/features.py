"""``features`` and ``rank``: frozen backbones as feature extractors.

``export_features`` writes the pooled features of every image of DATA (npz, or parquet when
pyarrow is installed) for use in other tools; ``rank`` scores candidate backbones for a dataset
without fine-tuning (LogME on those features), optionally checked against a linear probe.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab import backbones, metrics
from transferlab.data import load_images
from transferlab.data.collections import FileImages
from transferlab.data.loaders import make_batches
from transferlab.data.split import stratified_split
from transferlab.devices import resolve_device
from transferlab.engine.performance import for_inference
from transferlab.errors import DataError, UsageError
from transferlab.io import atomic_path, write_json
from transferlab.options.classify import ClassifyOptions
from transferlab.reports import plots
from transferlab.reports.html import HtmlReport


@dataclass
class Features:
    features: np.ndarray  # N x D float32
    labels: np.ndarray  # N int64
    classes: list[str]
    paths: list[str]  # empty for in-memory data
    backbone: str
    weights_source: str
    seconds: float


def load_subset(data: Any, max_images: int | None = None, seed: int = 0) -> tuple[Any, list[str]]:
    """DATA's images (all of them, or a stratified ``max_images``) and class names."""
    images, classes, _ = load_images(data)
    if max_images and len(images) > max_images:
        _, keep = stratified_split(images.labels, max_images / len(images), seed)
        images = images.subset(np.sort(keep))
    return images, classes


def compute_features(
    data: Any,
    backbone: str,
    *,
    img_size: int | None = None,
    batch_size: int = 128,
    device: str = "auto",
    weights: str | Path | None = None,
    max_images: int | None = None,
    seed: int = 0,
    loaded: tuple[Any, list[str]] | None = None,
) -> Features:
    """Pooled features of DATA's images (all of them, or a stratified ``max_images``) under
    ``backbone``; ``loaded`` passes images already read by :func:`load_subset`."""
    start = time.perf_counter()
    images, classes = loaded or load_subset(data, max_images, seed)
    torch.manual_seed(seed)  # a random-init baseline is then the same network every time
    built = backbones.create(backbone, num_classes=0, weights=weights, img_size=img_size)  # any backbone spec
    dev = resolve_device(device)
    model = built.model.to(dev)
    performance = for_inference(dev, ClassifyOptions.cpu_defaults)  # what a classify run would use
    source = make_batches(images, built.data_config, dev, evaluation=True)  # extract_features sets the format
    feats, labels = backbones.extract_features(model, source, batch_size, performance)
    paths = list(images.paths) if isinstance(images, FileImages) else []
    return Features(
        feats.cpu().numpy(), labels.cpu().numpy().astype(np.int64), classes, paths, backbone,
        built.weights_source, time.perf_counter() - start,
    )  # fmt: skip


def export_features(data: Any, backbone: str, out: str | Path, **options: Any) -> Features:
    """Write the features to ``out``: ``.npz`` (features, labels, classes, paths) or ``.parquet``."""
    out = Path(out)
    if out.suffix not in (".npz", ".parquet"):
        raise UsageError(f"--out {out} is neither .npz nor .parquet", "e.g. --out features.npz")
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError("writing parquet needs pyarrow", "pip install pyarrow, or use --out FILE.npz") from None
    result = compute_features(data, backbone, **options)
    with atomic_path(out) as tmp:
        if out.suffix == ".npz":
            with open(tmp, "wb") as handle:
                np.savez(
                    handle, features=result.features, labels=result.labels, classes=np.array(result.classes),
                    paths=np.array(result.paths), backbone=np.array(backbone),
                )  # fmt: skip
        else:
            _write_parquet(result, tmp)
    return result


def _write_parquet(result: Features, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "path": result.paths or [""] * len(result.labels),
            "label": result.labels,
            "class": [result.classes[i] for i in result.labels],
            "features": list(result.features),
        }
    )
    pq.write_table(table, path)


def linear_probe_accuracy(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> float:
    """Held-out accuracy of a logistic regression on standardised features (stratified 30%)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train, val = stratified_split(labels, 0.3, seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, C=0.1))
    probe.fit(features[train], labels[train])
    return float((probe.predict(features[val]) == labels[val]).mean())


def rank(
    data: Any, candidates: list[str], *, out: str | Path | None = None, probe: bool = False, **options: Any
) -> list[dict[str, Any]]:
    """Score each candidate backbone on DATA with LogME (higher is better), best first; with
    ``probe``, also measure a linear probe's accuracy to check the ranking. Writes rank.json,
    a bar chart and report.html into ``out``."""
    if len(candidates) < 1:
        raise UsageError("no backbones to rank", "e.g. --backbones tf_efficientnet_lite0,tf_efficientnet_lite2")
    loaded = load_subset(data, options.get("max_images"), options.get("seed", 0))  # read once, for every candidate
    rows = []
    for spec in candidates:
        f = compute_features(data, spec, loaded=loaded, **options)
        if len(np.unique(f.labels)) < 2:
            raise DataError("ranking needs labelled images of at least two classes", "arrange DATA/<class>/<image>")
        row = {
            "backbone": spec,
            "weights": f.weights_source,
            "LogME": round(metrics.compute("logme", features=f.features, labels=f.labels), 4),
        }
        if probe:
            row["linear probe acc"] = round(linear_probe_accuracy(f.features, f.labels), 4)
        row["images"], row["seconds"] = len(f.labels), round(f.seconds, 1)
        rows.append(row)
    rows.sort(key=lambda r: r["LogME"], reverse=True)
    if out is not None:
        _write_rank_report(Path(out), rows, str(data))
    return rows


def _write_rank_report(out: Path, rows: list[dict[str, Any]], data: str) -> None:

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "rank.json", {"data": data, "rows": rows})
    chart = plots.bar_chart({r["backbone"]: r["LogME"] for r in rows}, out / "logme.png", "LogME (higher: better)")
    report = HtmlReport(f"backbone ranking on {data}")
    report.table(rows).text(
        "LogME (You et al. 2021) scores frozen features by the evidence of a Bayesian linear model; "
        "it predicts the fine-tuning ranking without fine-tuning.",
        note=True,
    )
    report.image(chart, "LogME per backbone").save(out / "report.html")
