"""Batched inference with a pretrained ImageNet model or a trained run's classifier."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from transferlab import backbones
from transferlab.data.images import BadImage, collect_images, load_rgb, warn_skipped
from transferlab.data.transforms import eval_transform
from transferlab.devices import resolve_device
from transferlab.engine.performance import for_inference
from transferlab.errors import DataError, UsageError
from transferlab.options.classify import ClassifyOptions
from transferlab.progress import track
from transferlab.runs import CLASSIFIER, read_run


@dataclass
class Classifier:
    model: object  # a timm nn.Module in eval mode
    data_config: dict
    class_names: list[str]
    description: str


@dataclass
class Prediction:
    path: str
    top: list[tuple[int, str, float]]  # (class index, class name, probability), best first

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "predictions": [{"index": i, "label": n, "probability": round(p, 6)} for i, n, p in self.top],
        }


def imagenet_names(model) -> list[str]:
    """Human-readable ImageNet class names for a timm model's head (timm ships them offline)."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(model)
    if subset is None:
        return [str(i) for i in range(model.num_classes)]
    info = ImageNetInfo(subset)
    return [info.index_to_description(i) for i in range(model.num_classes)]


def load_classifier(
    model: str | None = None, checkpoint: str | Path | None = None, weights: str | Path | None = None
) -> Classifier:

    if (model is None) == (checkpoint is None):
        raise UsageError("give exactly one of --model NAME and --checkpoint RUN", "e.g. --model tf_efficientnet_lite0")
    if checkpoint is not None:
        run = read_run(checkpoint, model_kind=CLASSIFIER)
        built = backbones.from_run(run)
        return Classifier(built.model.eval(), built.data_config, run.class_names, f"run {checkpoint}")
    built = backbones.create(model, pretrained=True, weights=weights)
    return Classifier(
        built.model.eval(), built.data_config, imagenet_names(built.model), f"{model} ({built.weights_source} weights)"
    )


def _decode(path: Path) -> object:
    try:
        return load_rgb(path)
    except BadImage as bad:
        return bad


def predict(
    inputs: list[str | Path],
    *,
    model: str | None = None,
    checkpoint: str | Path | None = None,
    weights: str | Path | None = None,
    topk: int = 5,
    batch_size: int = 32,
    device: str = "auto",
) -> list[Prediction]:
    """Top-``topk`` classes for every image; unreadable files are skipped with one warning."""
    if topk < 1 or batch_size < 1:
        raise UsageError("--topk and --batch-size must be at least 1", "e.g. --topk 5 --batch-size 32")
    paths = collect_images(inputs)
    classifier = load_classifier(model, checkpoint, weights)
    dev = resolve_device(device)
    performance = for_inference(dev, ClassifyOptions.cpu_defaults)  # as training and evaluation run
    net = classifier.model.to(dev)
    transform = eval_transform(classifier.data_config)
    k = min(topk, len(classifier.class_names))
    results, bad = [], []
    batches = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=4) as pool, performance.inference(net):
        for batch in track(batches, "predicting", total=len(batches)):
            decoded = list(pool.map(_decode, batch))
            bad += [d for d in decoded if isinstance(d, BadImage)]
            good = [(p, img) for p, img in zip(batch, decoded) if not isinstance(img, BadImage)]
            if not good:
                continue
            x = performance.inputs(torch.stack([transform(img) for _, img in good]).to(dev))
            probs, idx = net(x).float().softmax(-1).topk(k, dim=-1)
            for (path, _), p_row, i_row in zip(good, probs.tolist(), idx.tolist()):
                results.append(Prediction(str(path), [(i, classifier.class_names[i], p) for i, p in zip(i_row, p_row)]))
    warn_skipped(bad)
    if not results:
        raise DataError("none of the given files is a usable image", "pass readable image files")
    return results
