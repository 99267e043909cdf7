"""Domain adaptation, top to bottom: both domains resident as tensors at one size and channel
count, a feature extractor + linear head, and per step a source batch (labelled), a target batch
(unlabelled, plus the few labelled target images for ``joint``) and the method's alignment term.

Optimiser and schedule follow the Transfer-Learning-Library's digit recipes: SGD with momentum
0.9, weight decay 1e-3, :math:`lr_i = lr_0 (1 + 10^{-3} i)^{-0.75}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab.data import DatasetSplits
from transferlab.engine.rng import step_generator
from transferlab.errors import DataError, TrainingError, UsageError
from transferlab.tasks.adapt.losses import (
    ConditionalDomainAdversarialLoss,
    CorrelationAlignmentLoss,
    DomainAdversarialLoss,
)


@dataclass
class AdaptOptions:
    method: str = "dann"
    backbone: str = "lenet"  # lenet (digits, 28 px grey) or a timm name (ImageNet weights, RGB)
    img_size: int | None = None  # None: 28 for lenet, the backbone's pretrained size otherwise
    epochs: int = 10
    iters_per_epoch: int = 500
    batch_size: int = 64  # per domain
    lr: float = 0.01
    trade_off: float = 1.0  # lambda of the alignment (or target) term
    target_labels: int = 0  # labelled target images per class (joint uses them; others ignore them)
    seed: int = 0
    device: str = "auto"


METHODS: dict[str, Callable[[int, int], nn.Module | None]] = {
    "source-only": lambda dim, k: None,
    "joint": lambda dim, k: None,
    "dann": lambda dim, k: DomainAdversarialLoss(dim),
    "cdan": lambda dim, k: ConditionalDomainAdversarialLoss(dim, k),
    "coral": lambda dim, k: CorrelationAlignmentLoss(),
}


class LeNet(nn.Module):
    """LeNet for 28 px grey digits, as the Transfer-Learning-Library's digit benchmarks use it."""

    out_features = 500

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(20, 50, 5), nn.Dropout2d(0.5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Dropout(0.5),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TimmFeatures(nn.Module):
    def __init__(self, name: str, img_size: int | None) -> None:
        super().__init__()
        from transferlab import backbones

        built = backbones.create(name, num_classes=0, img_size=img_size)
        self.model, self.config = built.model, built.data_config
        self.out_features = self.model.num_features
        self.normalize = backbones.Normalize(self.config["mean"], self.config["std"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.normalize(x * 0.5 + 0.5))


@dataclass
class Domain:
    """A domain's images as [-1, 1] float tensors on the device (training and held-out parts)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def _tensor(images: Any, size: int, channels: int, device: torch.device) -> torch.Tensor:
    from transferlab.data.loaders import decode_all

    pixels = decode_all(images, size)  # any size and mode -> size x size RGB
    if channels == 1:
        pixels = pixels.float().mean(dim=1, keepdim=True)
    return (pixels.float() / 127.5 - 1).to(device)


def prepare(splits: DatasetSplits, size: int, channels: int, device: torch.device) -> Domain:
    return Domain(
        _tensor(splits.train, size, channels, device),
        torch.as_tensor(splits.train.labels, device=device),
        _tensor(splits.val, size, channels, device),
        torch.as_tensor(splits.val.labels, device=device),
    )


def check_classes(source: DatasetSplits, target: DatasetSplits) -> None:
    if source.classes == target.classes:
        return
    only_s = sorted(set(source.classes) - set(target.classes))
    only_t = sorted(set(target.classes) - set(source.classes))
    parts = [f"only in source: {', '.join(only_s)}"] if only_s else []
    parts += [f"only in target: {', '.join(only_t)}"] if only_t else []
    raise DataError(
        f"source and target have different class sets ({'; '.join(parts) or 'the same names, another order'})",
        "give both domains the same classes (partial adaptation is not supported)",
    )


@dataclass
class AdaptOutcome:
    method: str
    seed: int
    target_acc: float
    source_acc: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    model: nn.Module | None = None


class Adapter:
    def __init__(self, source: Domain, target: Domain, num_classes: int, opts: AdaptOptions) -> None:
        if opts.method not in METHODS:
            raise UsageError(f"unknown --method '{opts.method}'", f"use one of: {', '.join(METHODS)}")
        self.opts, self.source, self.target = opts, source, target
        torch.manual_seed(opts.seed)
        device = source.train_x.device
        self.features = (LeNet() if opts.backbone == "lenet" else TimmFeatures(opts.backbone, opts.img_size)).to(device)
        self.head = nn.Linear(self.features.out_features, num_classes).to(device)
        self.align = METHODS[opts.method](self.features.out_features, num_classes)
        params = [*self.features.parameters(), *self.head.parameters()]
        if self.align is not None:
            self.align = self.align.to(device)
            params += list(self.align.parameters())
        self.optimizer = torch.optim.SGD(params, lr=opts.lr, momentum=0.9, weight_decay=1e-3, nesterov=True)
        self.labelled_target = self._labelled_target()

    def _labelled_target(self) -> torch.Tensor:
        """Indices of the few labelled target images (``target_labels`` a class, seeded)."""
        if not self.opts.target_labels:
            return torch.empty(0, dtype=torch.long)
        rng = np.random.default_rng(self.opts.seed)
        labels = self.target.train_y.cpu().numpy()
        keep = [rng.permutation(np.flatnonzero(labels == k))[: self.opts.target_labels] for k in np.unique(labels)]
        return torch.as_tensor(np.concatenate(keep))

    def _batch(self, domain_x: torch.Tensor, g: torch.Generator, pool: torch.Tensor | None = None) -> torch.Tensor:
        n = len(pool) if pool is not None else len(domain_x)
        index = torch.randint(n, (self.opts.batch_size,), generator=g)
        return pool[index] if pool is not None else index

    def step(self, i: int, total: int) -> dict[str, float]:
        opts = self.opts
        g = step_generator(opts.seed, i)
        s_idx = self._batch(self.source.train_x, g).to(self.source.train_x.device)
        t_idx = self._batch(self.target.train_x, g).to(self.target.train_x.device)
        x_s, y_s, x_t = self.source.train_x[s_idx], self.source.train_y[s_idx], self.target.train_x[t_idx]
        f = self.features(torch.cat([x_s, x_t]))
        f_s, f_t = f[: len(x_s)], f[len(x_s) :]
        logits_s, logits_t = self.head(f_s), self.head(f_t)
        loss = F.cross_entropy(logits_s, y_s)
        extra = torch.zeros((), device=loss.device)
        if opts.method == "joint" and len(self.labelled_target):
            l_idx = self._batch(self.target.train_x, g, self.labelled_target).to(x_t.device)
            extra = F.cross_entropy(self.head(self.features(self.target.train_x[l_idx])), self.target.train_y[l_idx])
        elif self.align is not None:
            if hasattr(self.align, "reverse"):
                self.align.reverse.progress = i / total
            extra = self.align(f_s, f_t, logits_s, logits_t)
        total_loss = loss + opts.trade_off * extra
        if not torch.isfinite(total_loss):
            raise TrainingError(f"the loss became {total_loss.item()} at step {i + 1}", "lower --lr or --trade-off")
        for group in self.optimizer.param_groups:
            group["lr"] = opts.lr * (1 + 1e-3 * i) ** -0.75
        self.optimizer.zero_grad(set_to_none=True)
        total_loss.backward()
        self.optimizer.step()
        return {"cls": float(loss.detach()), "align": float(extra.detach())}

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.features.eval()
        correct = sum(
            (self.head(self.features(xb)).argmax(1) == yb).sum().item() for xb, yb in zip(x.split(512), y.split(512))
        )
        self.features.train()
        return correct / max(len(y), 1)

    def fit(self) -> AdaptOutcome:
        from transferlab.progress import StepProgress

        opts, start = self.opts, time.perf_counter()
        total = opts.epochs * opts.iters_per_epoch
        history = []
        with StepProgress(total, 0, f"adapting ({opts.method}, seed {opts.seed})") as progress:
            for epoch in range(opts.epochs):
                losses = []
                for i in range(opts.iters_per_epoch):
                    losses.append(self.step(epoch * opts.iters_per_epoch + i, total))
                    progress.advance()
                row = {
                    "epoch": epoch + 1,
                    "cls_loss": float(np.mean([x["cls"] for x in losses])),
                    "align_loss": float(np.mean([x["align"] for x in losses])),
                    "target_acc": self.accuracy(self.target.val_x, self.target.val_y),
                }
                history.append(row)
                progress.note(f"target acc {row['target_acc']:.1%}")
        return AdaptOutcome(
            opts.method, opts.seed, history[-1]["target_acc"], self.accuracy(self.source.val_x, self.source.val_y),
            time.perf_counter() - start, history, nn.Sequential(self.features, self.head),
        )  # fmt: skip
