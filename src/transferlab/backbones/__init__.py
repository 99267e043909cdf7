"""Backbones: timm models with pretrained weights that also work offline.

``create("tf_efficientnet_lite0", num_classes=5)`` gives a timm model (so every model answers
timm's interface: ``forward_features``, ``forward_head``, ``reset_classifier``,
``group_matcher``) together with the preprocessing its weights expect.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, NamedTuple

from torch import nn

from transferlab.backbones import small  # noqa: F401 - registers lenet with timm
from transferlab.backbones.builtin import BUILTIN, TF_PREPROCESSING
from transferlab.backbones.sources import describe_source, load_pretrained, offline_names
from transferlab.errors import UsageError

__all__ = ["SPEC_FORMS", "Backbone", "create", "data_config", "describe_source", "list_backbones", "resolve"]

#: Every form a ``--backbone`` takes, resolved by :func:`resolve` (shown by ``transferlab backbones``).
SPEC_FORMS = {
    "NAME": "a timm model with pretrained weights (built-in, cache, or the hub when online)",
    "NAME:random": "the same architecture, randomly initialised (the from-scratch baseline)",
    "ae:RUN": "the encoder of an `autoencoder pretrain` run, at the image size it was trained on",
    "run:RUN": "the fine-tuned body of a classifier run (classify or adapt) with a new head",
    "lenet": "small networks registered with timm (random init; lenet: 28 px digits)",
}
#: Registered small networks: they have no pretrained weights.
SMALL = ("lenet",)
ENCODER_FILE = "encoder.safetensors"


class Spec(NamedTuple):
    name: str  # the timm architecture
    weights: Path | None  # a weights file the spec names
    pretrained: bool
    img_size: int | None
    fresh_head: bool = False  # the weights carry a classifier for other classes


def resolve(spec: str, img_size: int | None = None, pretrained: bool = True) -> Spec:
    """A backbone spec (see :data:`SPEC_FORMS`) -> architecture, weights and image size."""
    from transferlab.runs import AUTOENCODER, CLASSIFIER, read_run

    if spec.startswith(("ae:", "run:")):
        kind, _, folder = spec.partition(":")
        run = read_run(folder, model_kind=AUTOENCODER if kind == "ae" else CLASSIFIER)
        trained = int(run.model["img_size"]) if kind == "ae" else int(run.preprocessing["input_size"][-1])
        if kind == "ae" and img_size is not None and img_size != trained:
            raise UsageError(
                f"the encoder of {folder} was trained on {trained} px images, not {img_size} px",
                f"use --img-size {trained}, or pretrain an autoencoder at {img_size} px",
            )
        name = str(run.model["encoder" if kind == "ae" else "backbone"])
        weights = run.path / ENCODER_FILE if kind == "ae" else run.weights_path
        return Spec(name, weights if pretrained else None, pretrained, img_size or trained, fresh_head=kind == "run")
    if spec.endswith(":random"):
        return Spec(spec.removesuffix(":random"), None, False, img_size)
    return Spec(spec, None, pretrained and spec not in SMALL, img_size)


#: Shown by ``transferlab backbones`` besides the built-in and cached ones: common choices.
POPULAR = (
    "resnet18",
    "resnet50",
    "efficientnet_b0",
    "mobilenetv3_large_100",
    "convnext_tiny",
    "regnety_016",
    "vit_small_patch16_224",
)


def architecture(model: nn.Module) -> str:
    """The timm name of ``model`` (what a run stores, whatever spec built it)."""
    return str(model.pretrained_cfg["architecture"])


class Backbone(NamedTuple):
    model: nn.Module
    data_config: dict[str, Any]
    weights_source: str  # "built-in", "cache", "hub", "file PATH" or "random init"


class Normalize(nn.Module):
    """RGB in [0, 1] -> ``(x - mean) / std``, the input a backbone's pretrained weights expect
    (``mean``/``std`` from its data config); for models that take raw images inside a task."""

    def __init__(self, mean: Any, std: Any) -> None:
        super().__init__()
        import torch

        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Any) -> Any:
        return (x - self.mean) / self.std


def check_name(name: str) -> None:
    import timm

    if name in BUILTIN or timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown backbone '{name}'", f"{hint}`transferlab backbones --all` lists every name")


def data_config(model: nn.Module, img_size: int | None = None) -> dict[str, Any]:
    """timm's preprocessing config for ``model`` (size, mean, std, interpolation, crop)."""
    import timm.data

    config = dict(timm.data.resolve_model_data_config(model))
    if img_size is not None:
        config["input_size"] = (config["input_size"][0], img_size, img_size)
    return config


def create(
    name: str,
    pretrained: bool = True,
    num_classes: int | None = None,
    weights: str | Path | None = None,
    img_size: int | None = None,
    **timm_kwargs: Any,
) -> Backbone:
    """The model a backbone spec names (:data:`SPEC_FORMS`) with its weights and preprocessing.

    ``num_classes=None`` keeps the pretrained (ImageNet) head; ``0`` removes the head;
    any other number replaces it with a new, randomly initialised one.
    """
    import timm

    spec = resolve(name, img_size, pretrained)
    if spec.weights is not None and weights is not None:
        raise UsageError(f"--backbone {name} already names its weights", "leave out --weights")
    name, pretrained, img_size = spec.name, spec.pretrained, spec.img_size
    weights = spec.weights if spec.weights is not None else weights
    check_name(name)
    # A weights file may carry a head of the requested size (a user's own fine-tuned model): build
    # that head first so it loads. Other sources hold ImageNet heads, replaced after loading.
    head = {"num_classes": num_classes} if weights is not None and num_classes is not None else {}
    model = timm.create_model(name, pretrained=False, **head, **timm_kwargs)
    source = "random init"
    if pretrained or weights is not None:
        if name in BUILTIN:
            model.pretrained_cfg = {**model.pretrained_cfg, **TF_PREPROCESSING}
        source = load_pretrained(name, model, weights)
    if num_classes is not None and (num_classes != model.num_classes or spec.fresh_head):
        model.reset_classifier(num_classes)
    return Backbone(model, data_config(model, img_size), source)


def list_backbones(include_all: bool = False, pattern: str | None = None) -> list[dict[str, str]]:
    """Backbones with where their weights would come from and their input size."""
    import timm
    from timm.models import get_pretrained_cfg

    names = timm.list_models(pattern or "*", pretrained=True) if include_all else None
    if names is None:
        names = sorted(set(BUILTIN) | set(offline_names())) + [n for n in (*POPULAR, *SMALL) if n not in BUILTIN]
        if pattern:
            names = [n for n in names if pattern.replace("*", "") in n]
    rows = []
    for name in dict.fromkeys(n.split(".")[0] for n in names):
        if name in SMALL:
            rows.append({"name": name, "weights": "none (trained from scratch)", "input": "28x28"})
            continue
        cfg = get_pretrained_cfg(name)
        size = "x".join(map(str, cfg.input_size[1:])) if cfg is not None else "?"
        rows.append({"name": name, "weights": describe_source(name), "input": size})
    return rows


def load_run_model(run_dir: str | Path) -> Backbone:
    """The network of a classifier run, or the encoder of an autoencoder run (the run-kind
    registry's loader for both)."""
    from transferlab.runs import CLASSIFIER, read_run

    run = read_run(run_dir)
    if run.model.get("kind") == CLASSIFIER:
        return from_run(read_run(run_dir, model_kind=CLASSIFIER))
    return create(f"ae:{run_dir}", num_classes=0)


def from_run(run: Any) -> Backbone:
    """The classifier stored in a run directory (a :class:`transferlab.runs.RunInfo`)."""
    import timm

    from transferlab.backbones.weight_files import fit_state_dict, read_state_dict

    spec = run.model
    check_name(spec["backbone"])
    model = timm.create_model(
        spec["backbone"], pretrained=False, num_classes=int(spec["num_classes"]), **spec.get("timm_kwargs", {})
    )
    state = read_state_dict(run.weights_path)
    fit_state_dict(model, state, f"run {run.path}")
    config = dict(run.preprocessing) or data_config(model)
    return Backbone(model, config, f"run {run.path}")


def extract_features(model: nn.Module, source: Any, batch_size: int, performance: Any = None) -> tuple[Any, Any]:
    """Pooled pre-logits features of every batch of ``source`` (a ``data.loaders`` batch source),
    with their labels: the representation a transfer method starts from. ``performance``: how
    the network runs (``engine.performance``; default: the rule for the model's device)."""
    import torch

    from transferlab.engine.performance import for_inference
    from transferlab.progress import StepProgress

    performance = performance or for_inference(next(model.parameters()).device)
    feats, labels = [], []
    with performance.inference(model), StepProgress(len(source), 0, "extracting features") as progress:
        for x, y in source.batches(batch_size, train=False):
            x = performance.inputs(x)
            feats.append(model.forward_head(model.forward_features(x), pre_logits=True).float())
            labels.append(y)
            progress.advance(steps=len(y))
    return torch.cat(feats), torch.cat(labels)
