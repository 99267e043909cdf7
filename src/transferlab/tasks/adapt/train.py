"""Domain adaptation, top to bottom: both domains resident as tensors at one size and channel
count, a feature extractor + linear head, and per step a source batch (labelled), a target batch
(unlabelled, plus the few labelled target images for ``joint``) and the method's alignment term.

Optimiser and schedule follow the Transfer-Learning-Library's digit recipes: SGD with momentum
0.9, weight decay 1e-3, :math:`lr_i = lr_0 (1 + 10^{-3} i)^{-0.75}`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from transferlab import backbones, metrics
from transferlab.backbones import Normalize
from transferlab.data import DatasetSplits
from transferlab.data.loaders import decode_for_evaluation
from transferlab.engine.batches import BatchDraw
from transferlab.engine.checkpoint import capture_state, restore_state
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import performance_of, unwrap
from transferlab.engine.run import run
from transferlab.engine.session import TrainingSession, fingerprint, read_metrics
from transferlab.engine.steps import StepRecipe
from transferlab.errors import DataError
from transferlab.options.adapt import AdaptOptions
from transferlab.runs import CLASSIFIER, save_run
from transferlab.tasks.adapt.losses import (
    ConditionalDomainAdversarialLoss,
    CorrelationAlignmentLoss,
    DomainAdversarialLoss,
)

TASK = "adapt"
METRICS = ("step", "epoch", "cls_loss", "align_loss", "target_acc")
METHODS: dict[str, Callable[[int, int], nn.Module | None]] = {
    "source-only": lambda dim, k: None,
    "joint": lambda dim, k: None,
    "dann": lambda dim, k: DomainAdversarialLoss(dim),
    "cdan": lambda dim, k: ConditionalDomainAdversarialLoss(dim, k),
    "coral": lambda dim, k: CorrelationAlignmentLoss(),
}


@dataclass
class Domain:
    """A domain's images as uint8 tensors on the device (training and held-out parts)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor


def prepare(splits: DatasetSplits, config: dict[str, Any]) -> Domain:
    """Both parts decoded once at the classifier's input size, as its eval preprocessing does."""

    return Domain(
        decode_for_evaluation(splits.train, config),
        torch.as_tensor(splits.train.labels),
        decode_for_evaluation(splits.val, config),
        torch.as_tensor(splits.val.labels),
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
    run_dir: Path | None = None


class AdaptationNetwork(nn.Module):
    """A classifier (any backbone spec, timm's interface) and the method's alignment term, in one
    module so that one ``forward`` uses every trained parameter (as data-parallel training needs).

    ``forward(x_s, x_t)`` returns the source logits, the target logits and the alignment term
    :math:`L_{align}(f_s, f_t)` of the method (zero for source-only and joint)."""

    def __init__(self, classifier: nn.Module, align: nn.Module | None, config: dict[str, Any]) -> None:
        super().__init__()

        self.classifier, self.align = classifier, align
        self.normalize = Normalize(config["mean"], config["std"])

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.classifier.forward_head(
            self.classifier.forward_features(self.normalize(x.float() / 255)), pre_logits=True
        )
        return f, self.classifier.get_classifier()(f)

    def forward(self, x_s: torch.Tensor, x_t: torch.Tensor, progress: float = 0.0) -> tuple[torch.Tensor, ...]:
        f, logits = self.features(torch.cat([x_s, x_t]))
        n = len(x_s)
        if self.align is None:
            return logits[:n], logits[n:], logits.new_zeros(())
        if hasattr(self.align, "reverse"):
            self.align.reverse.progress = progress
        return logits[:n], logits[n:], self.align(f[:n], f[n:], logits[:n], logits[n:])


class AdaptRecipe(StepRecipe[AdaptOptions, AdaptOutcome]):
    """One method with one seed. DATA is (source domain, target domain, (source splits, target
    splits)), prepared once for a whole study; the run holds the adapted classifier, which
    ``predict``, ``evaluate``, ``export`` and ``serve`` take."""

    task, options, metrics = TASK, AdaptOptions, METRICS
    title_format = "adapting ({method}, seed {seed})"
    command = "transferlab adapt --source SOURCE --target TARGET"

    def __init__(self, data: tuple[Domain, Domain, tuple[DatasetSplits, DatasetSplits]], opts: AdaptOptions,
                 fabric: Any, run_dir: Path) -> None:  # fmt: skip

        source, target, self.splits = data
        self.opts, self.fabric, self.run_dir = opts, fabric, run_dir
        self.source, self.target = (Domain(*[t.to(fabric.device) for t in vars(d).values()]) for d in (source, target))
        built = backbones.create(opts.backbone, num_classes=len(self.splits[0].classes), img_size=opts.img_size)
        classifier, self.config = built.model, built.data_config
        align = METHODS[opts.method](classifier.num_features, classifier.num_classes)
        network = AdaptationNetwork(classifier, align, self.config)
        optimizer = torch.optim.SGD(network.parameters(), lr=opts.lr, momentum=0.9, weight_decay=1e-3, nesterov=True)
        self.network, self.optimizer = setup_trained(fabric, network, optimizer)
        self.labelled_target = self._labelled_target()
        self.step, self.window = 0, []

    def _labelled_target(self) -> torch.Tensor:
        """Indices of the few labelled target images (``target_labels`` a class, seeded)."""
        if not self.opts.target_labels:
            return torch.empty(0, dtype=torch.long)
        rng = np.random.default_rng(self.opts.seed)
        labels = self.target.train_y.cpu().numpy()
        keep = [rng.permutation(np.flatnonzero(labels == k))[: self.opts.target_labels] for k in np.unique(labels)]
        return torch.as_tensor(np.concatenate(keep))

    def fingerprint(self) -> str:
        return fingerprint(self.source.train_x, self.source.train_y, self.target.train_x, self.target.train_y)

    def total(self) -> int:
        return self.opts.epochs * self.opts.iters_per_epoch

    def train_step(self, session: TrainingSession) -> dict[str, float]:
        opts, total = self.opts, self.total()
        draw = BatchDraw.for_step(opts.seed, self.step, opts.batch_size, self.fabric)  # this process's share
        s_idx, t_idx = (draw.indices(len(d.train_x)).to(self.fabric.device) for d in (self.source, self.target))
        logits_s, _, extra = self.network(self.source.train_x[s_idx], self.target.train_x[t_idx], self.step / total)
        loss = F.cross_entropy(logits_s, self.source.train_y[s_idx])
        if opts.method == "joint" and len(self.labelled_target):
            pick = self.labelled_target[draw.indices(len(self.labelled_target))].to(self.fabric.device)
            labelled, _, _ = self.network(self.target.train_x[pick], self.target.train_x[pick][:0])
            extra = F.cross_entropy(labelled, self.target.train_y[pick])
        total_loss = loss + opts.trade_off * extra
        session.check_finite(total_loss.detach(), f"step {self.step + 1}", "lower --lr or --trade-off")
        for group in self.optimizer.param_groups:
            group["lr"] = opts.lr * (1 + 1e-3 * self.step) ** -0.75
        self.optimizer.zero_grad(set_to_none=True)
        self.fabric.backward(total_loss)
        self.optimizer.step()
        self.step += 1
        self.window.append((float(loss.detach()), float(extra.detach())))
        return {}  # an epoch's mean losses are logged at its end, with the target accuracy

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:

        net = unwrap(self.network)
        with performance_of(self.fabric).inference(net):
            logits = torch.cat([net.features(xb)[1].float() for xb in x.split(512)])
        return metrics.compute("validation", logits=logits, labels=y, num_classes=net.classifier.num_classes)["val_acc"]

    def end_epoch(self) -> dict[str, float]:
        losses = np.array(self.window or [(float("nan"), float("nan"))])
        row = {
            "step": self.step,
            "epoch": self.step // self.opts.iters_per_epoch,
            "cls_loss": float(losses[:, 0].mean()),
            "align_loss": float(losses[:, 1].mean()),
            "target_acc": self.accuracy(self.target.val_x, self.target.val_y),
        }
        self.window = []
        return row

    def state(self) -> dict[str, Any]:
        parts = {"network": self.network, "optimizer": self.optimizer}
        return capture_state(self.opts, **parts, step=self.step, window=self.window)

    def restore(self, state: dict[str, Any]) -> None:
        restore_state(state, network=self.network, optimizer=self.optimizer)
        self.step = int(state["step"])
        self.window = [tuple(w) for w in state["window"]]

    def after_step(self, session: TrainingSession) -> dict[str, float]:
        if self.step % self.opts.iters_per_epoch:
            return {}
        row = self.end_epoch()
        session.advance(f"target acc {row['target_acc']:.1%}", steps=0)
        return row

    def checkpoint_due(self) -> bool:
        """At an epoch's end: the loss window is whole there."""
        return self.step % self.opts.iters_per_epoch == 0

    def finish(self, seconds: float, write: bool, name: str = "") -> AdaptOutcome:

        source_acc = self.accuracy(self.source.val_x, self.source.val_y)
        history = read_metrics(self.run_dir) if self.fabric.global_rank == 0 else []
        target_acc = history[-1]["target_acc"] if history else float("nan")
        opts, (source, target) = self.opts, self.splits
        if write:
            classifier = unwrap(self.network).classifier
            save_run(
                self.run_dir, task=TASK, state_dict=classifier.state_dict(),
                model={"kind": CLASSIFIER, "backbone": backbones.architecture(classifier),
                       "num_classes": len(source.classes)},
                class_names=source.classes, preprocessing=self.config,
                metrics={"target_acc": target_acc, "source_acc": source_acc, "seconds": seconds},
                extra={"method": opts.method, "seed": opts.seed, "options": asdict(opts),
                       "source": source.description, "target": target.description},
                performance=performance_of(self.fabric),
            )  # fmt: skip
        return AdaptOutcome(opts.method, opts.seed, target_acc, source_acc, seconds, history, self.run_dir)


def train_one(source: Domain, target: Domain, splits: tuple[DatasetSplits, DatasetSplits], opts: AdaptOptions,
              run_dir: Path, resume: bool) -> AdaptOutcome:  # fmt: skip
    """Train one method with one seed as a run (continuing its checkpoint with ``resume``)."""

    data = (source, target, splits)
    return run(AdaptRecipe, data, out=run_dir, resume=run_dir if resume else None, **asdict(opts))
