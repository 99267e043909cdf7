"""One classification run on Lightning Fabric: the whole recipe, readable top to bottom.

data -> model (pretrained or scratch) -> optimizer with per-stage learning rates -> per-step
cosine schedule with warm-up -> epochs of (freeze per strategy, train, validate, checkpoint)
-> the best weights saved as a run. ``linear`` trains the head on features computed once.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from transferlab import backbones
from transferlab.data import DatasetSplits
from transferlab.data.loaders import TensorBatches, make_batches
from transferlab.engine.checkpoint import capture_state, restore_state
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import Performance, performance_of
from transferlab.engine.session import TrainingSession, fingerprint
from transferlab.errors import TrainingError, UsageError
from transferlab.options.classify import ClassifyOptions
from transferlab.runs import save_run
from transferlab.tasks.classify.l2sp import L2SP
from transferlab.tasks.classify.strategies import (
    Strategy,
    apply_freezing,
    freeze_batchnorm_of_frozen,
    get_strategy,
    parameter_groups,
)

TASK = "classify"
METRICS_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_f1", "lr", "trainable", "seconds")
DIVERGENCE_REMEDY = "lower --lr or use --precision 32"


@dataclass
class Outcome:
    run_dir: Path
    strategy: str
    best_epoch: int
    val_acc: float
    val_f1: float
    trainable_params: int
    wall_seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def data_fingerprint(splits: DatasetSplits) -> str:
    """Identifies the exact train/val split, so a resume on other data is refused."""
    parts: list[Any] = [splits.classes]
    for part in (splits.train, splits.val):
        parts += [part.labels, list(getattr(part, "paths", []))]
        parts += [part.images] if hasattr(part, "images") else []
    return fingerprint(*parts)


def build_optimizer(
    model: nn.Module, groups: list[list[str]], scales: list[float], opts: ClassifyOptions, no_decay: set[str]
):
    """One optimizer group per (stage, decay/no-decay); biases and norms get no weight decay."""
    params = dict(model.named_parameters())
    param_groups = []
    for names, scale in zip(groups, scales):
        for decay in (True, False):
            chosen = [params[n] for n in names if (n not in no_decay) == decay]
            if chosen:
                wd = opts.weight_decay if decay else 0.0
                param_groups.append({"params": chosen, "lr": opts.lr * scale, "weight_decay": wd})
    if opts.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=opts.lr)
    if opts.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=opts.lr, momentum=opts.momentum, nesterov=True)
    raise UsageError(f"unknown optimizer '{opts.optimizer}'", "use adamw or sgd")


def _no_decay_names(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.ndim <= 1 or n.endswith(".bias")}


def predict_batches(
    net: nn.Module, source: Any, batch_size: int, performance: Performance
) -> tuple[torch.Tensor, torch.Tensor]:
    logits, labels = [], []
    with performance.inference(net):
        for x, y in source.batches(batch_size, train=False):
            logits.append(net(x).float())
            labels.append(y)
    return torch.cat(logits), torch.cat(labels)


def _val_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    from torchmetrics.functional.classification import multiclass_f1_score

    return {
        "val_loss": F.cross_entropy(logits, labels).item(),
        "val_acc": (logits.argmax(1) == labels).float().mean().item(),
        "val_f1": multiclass_f1_score(logits, labels, num_classes=num_classes, average="macro").item(),
    }


class Trainer:
    """Holds the moving parts of one run; ``fit()`` runs it to the end (or resumes it)."""

    def __init__(self, splits: DatasetSplits, opts: ClassifyOptions, run_dir: Path, fabric: Any) -> None:
        self.splits, self.opts, self.run_dir, self.fabric = splits, opts, Path(run_dir), fabric
        self.performance = performance_of(fabric)
        self.strategy: Strategy = get_strategy(opts.strategy)
        self.num_classes = splits.num_classes
        self.history: list[dict[str, float]] = []
        self.best = {"val_acc": -1.0, "epoch": -1, "val_f1": 0.0}
        self.epoch = 0
        self.step = 0
        self.stale = 0  # validations without improvement (early stopping)
        self.batch_in_epoch = 0  # batches of the current epoch done (a preempted run resumes mid-epoch)
        self.running = {"loss": 0.0, "correct": 0.0, "seen": 0.0}

    # ----------------------------------------------------------------------------- set-up

    def _build_model(self) -> None:
        opts = self.opts
        timm_kwargs = {} if opts.drop_rate is None else {"drop_rate": opts.drop_rate}
        built = backbones.create(
            opts.backbone,
            pretrained=self.strategy.pretrained,
            num_classes=self.num_classes,
            weights=opts.weights if self.strategy.pretrained else None,
            img_size=opts.img_size,
            **timm_kwargs,
        )
        self.model, self.data_config, self.weights_source = built
        self.architecture = backbones.architecture(self.model)
        self.groups = parameter_groups(self.model)
        self.timm_kwargs = timm_kwargs

    def _build_batches(self) -> None:
        opts, device = self.opts, self.fabric.device
        layout = self.performance.channels_last
        self.train_source = make_batches(
            self.splits.train, self.data_config, device, opts.workers, opts.resident, channels_last=layout
        )
        self.val_source = make_batches(
            self.splits.val, self.data_config, device, opts.workers, opts.resident, True, channels_last=layout
        )

    def _setup_training(self) -> None:
        opts, fabric = self.opts, self.fabric
        self.model.to(fabric.device)
        if self.strategy.cached_features:
            # The frozen body runs once over the data; only the head trains, on cached features.
            batch, chosen = opts.batch_size * 2, self.performance
            train_f, train_y = backbones.extract_features(self.model, self.train_source, batch, chosen)
            val_f, val_y = backbones.extract_features(self.model, self.val_source, batch, chosen)
            self.train_source, self.val_source = TensorBatches(train_f, train_y), TensorBatches(val_f, val_y)
            self.net_module: nn.Module = self.model.get_classifier()
            groups = [[n for n, _ in self.net_module.named_parameters()]]
            scales = [1.0]
        else:
            self.net_module = self.model
            groups, scales = self.groups, self.strategy.lr_scales(len(self.groups), opts.as_dict())
        self.trainable = sum(p.numel() for p in self.net_module.parameters())
        no_decay = _no_decay_names(self.net_module)
        self.l2sp = None
        if opts.l2sp and self.strategy.pretrained and not self.strategy.cached_features:
            body = {n for g in self.groups[:-1] for n in g}
            self.l2sp = L2SP(self.net_module, body, alpha=opts.l2sp)
            no_decay |= body  # L2-SP replaces weight decay on the body
        optimizer = build_optimizer(self.net_module, groups, scales, opts, no_decay)
        steps_per_epoch = max(1, math.ceil(self.batches_per_epoch() / opts.accumulate))
        self.total_steps = steps_per_epoch * opts.epochs
        from timm.scheduler import CosineLRScheduler

        self.scheduler = CosineLRScheduler(
            optimizer,
            t_initial=self.total_steps,
            lr_min=opts.lr * 1e-3,
            warmup_t=int(steps_per_epoch * opts.warmup_epochs),
            warmup_lr_init=opts.lr * 1e-3,
            t_in_epochs=False,
        )
        self.net, self.optimizer = setup_trained(fabric, self.net_module, optimizer)
        self.ema = None
        if opts.ema:
            from timm.utils import ModelEmaV3

            self.ema = ModelEmaV3(self.net_module, decay=opts.ema)
        self.mixup = None
        if opts.mixup or opts.cutmix:
            from timm.data import Mixup

            self.mixup = Mixup(
                mixup_alpha=opts.mixup,
                cutmix_alpha=opts.cutmix,
                label_smoothing=opts.label_smoothing,
                num_classes=self.num_classes,
            )

    def batches_per_epoch(self) -> int:
        """Global batches per epoch (each process takes its share of every batch)."""
        n, b = len(self.splits.train), self.opts.batch_size
        return n // b if n >= b else 1

    # ----------------------------------------------------------------------------- state

    def _state(self) -> dict[str, Any]:
        scheduler = {  # timm's scheduler state holds its optimizer too: keep the plain values
            k: v
            for k, v in self.scheduler.state_dict().items()
            if isinstance(v, (int, float, str, list, tuple, bool, type(None)))
        }
        return capture_state(
            self.opts, model=self.model, optimizer=self.optimizer, scheduler=scheduler,
            ema=self.ema.module.state_dict() if self.ema else None, epoch=self.epoch, step=self.step,
            batch_in_epoch=self.batch_in_epoch, running=self.running, history=self.history, best=self.best,
            stale=self.stale,
        )  # fmt: skip

    def _restore(self, state: dict[str, Any]) -> None:
        restore_state(state, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler)
        if self.ema and state.get("ema") is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.batch_in_epoch, self.running = int(state["batch_in_epoch"]), dict(state["running"])
        self.history, self.best, self.stale = list(state["history"]), dict(state["best"]), int(state["stale"])

    def _save_best(self) -> None:
        if self.fabric.global_rank != 0:
            return
        weights = self.model.state_dict()
        if self.ema is not None and not self.strategy.cached_features:
            weights = self.ema.module.state_dict()
        elif self.ema is not None:
            head = self.ema.module.state_dict()
            prefix = self.model.pretrained_cfg.get("classifier", "classifier")
            weights = {**weights, **{f"{prefix}.{k}": v for k, v in head.items()}}
        save_run(
            self.run_dir,
            task=TASK,
            state_dict=weights,
            model={
                "kind": "timm-classifier",
                "backbone": self.architecture,
                "num_classes": self.num_classes,
                "timm_kwargs": self.timm_kwargs,
            },
            class_names=self.splits.classes,
            preprocessing=self.data_config,
            metrics={**self.best, "trainable_params": self.trainable},
            extra={
                "strategy": self.opts.strategy,
                "weights_source": self.weights_source,
                "options": self.opts.as_dict(),
                "data": self.splits.summary(),
            },
            performance=self.performance,
        )

    # ----------------------------------------------------------------------------- loop

    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if target.ndim == 2:  # soft targets from mixup / cutmix
            loss = F.cross_entropy(logits, target)
        else:
            loss = F.cross_entropy(logits, target, label_smoothing=self.opts.label_smoothing)
        if self.l2sp is not None:
            loss = loss + self.l2sp(self.net_module)
        return loss

    def _train_epoch(self, session: TrainingSession) -> dict[str, float]:
        opts, fabric = self.opts, self.fabric
        if not self.strategy.cached_features:
            trainable = self.strategy.trainable_groups(self.epoch, opts.epochs, len(self.groups))
            self.trainable = apply_freezing(self.model, self.groups, trainable)
        self.net.train()
        if not self.strategy.cached_features:
            freeze_batchnorm_of_frozen(self.model)
        batches = self.train_source.batches(
            opts.batch_size,
            train=True,
            seed=opts.seed,
            epoch=self.epoch,
            rank=fabric.global_rank,
            world=fabric.world_size,
            scale=(opts.crop_scale, 1.0),
            skip=self.batch_in_epoch,
        )
        totals = self.running
        for x, y in batches:
            target = y
            if self.mixup is not None and len(y) % 2 == 0:
                x, target = self.mixup(x, y)
            logits = self.net(x)
            loss = self._loss(logits.float(), target)
            session.check_finite(loss.detach(), f"step {self.step + 1} (epoch {self.epoch + 1})", DIVERGENCE_REMEDY)
            fabric.backward(loss / opts.accumulate)
            self.batch_in_epoch += 1
            if self.batch_in_epoch % opts.accumulate == 0:
                self._optimizer_step()
            totals["loss"] += loss.item() * len(y)
            totals["correct"] += (logits.argmax(1) == y).sum().item()
            totals["seen"] += len(y)
            session.advance(self._note())
            if self.batch_in_epoch % opts.accumulate == 0:  # preemption only between optimizer steps
                session.step_boundary(self._position(), self._state, log_position=self.epoch)
        if totals["seen"] and self.batch_in_epoch % opts.accumulate:  # the epoch ended inside an accumulation
            self._optimizer_step()
        seen = max(totals["seen"], 1)
        metrics = {
            "train_loss": totals["loss"] / seen,
            "train_acc": totals["correct"] / seen if self.mixup is None else float("nan"),
        }
        self.batch_in_epoch, self.running = 0, {"loss": 0.0, "correct": 0.0, "seen": 0.0}
        return metrics

    def _position(self) -> int:
        return self.epoch * self.batches_per_epoch() + self.batch_in_epoch

    def _note(self) -> str:
        seen = max(self.running["seen"], 1)
        best = f" | best val acc {self.best['val_acc']:.1%}" if self.best["val_acc"] >= 0 else ""
        return (
            f"epoch {self.epoch + 1}/{self.opts.epochs} loss {self.running['loss'] / seen:.3f} "
            f"acc {self.running['correct'] / seen:.1%}{best}"
        )

    def _optimizer_step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.scheduler.step_update(self.step)
        if self.ema is not None:
            self.ema.update(self.net_module, step=self.step)

    def _validate(self) -> dict[str, float]:
        net = self.ema.module if self.ema is not None else self.net
        logits, labels = predict_batches(net, self.val_source, self.opts.batch_size * 2, self.performance)
        return _val_metrics(logits, labels, self.num_classes)

    def fit(self, session: TrainingSession, stop_after: int | None = None) -> Outcome:
        """Train to ``opts.epochs`` (or ``stop_after`` epochs, as if interrupted), checkpointing
        every epoch; ``session.state`` continues a stopped run."""
        start = time.perf_counter()
        self._build_model()
        self._build_batches()
        self._setup_training()
        if session.state is not None:
            self._restore(session.state)
        stopped_early = False
        while self.epoch < self.opts.epochs:
            epoch_start = time.perf_counter()
            try:
                train_metrics = self._train_epoch(session)
            except torch.cuda.OutOfMemoryError:
                raise _out_of_memory(self.opts) from None
            except RuntimeError as exc:
                if "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower():
                    raise _out_of_memory(self.opts) from None
                raise
            self.epoch += 1
            row = {"epoch": self.epoch, **train_metrics, "lr": self.optimizer.param_groups[-1]["lr"]}
            row["trainable"] = self.trainable
            if self.epoch % self.opts.eval_every == 0 or self.epoch == self.opts.epochs:
                row.update(self._validate())
                improved = row["val_acc"] > self.best["val_acc"]
                if improved:
                    self.best = {"val_acc": row["val_acc"], "val_f1": row["val_f1"], "epoch": self.epoch}
                    self._save_best()
                self.stale = 0 if improved else self.stale + 1
            row["seconds"] = time.perf_counter() - epoch_start
            self.history.append(row)
            session.log(row)
            session.step_boundary(self._position(), self._state, last=True, log_position=self.epoch)
            if self.opts.patience and self.stale >= self.opts.patience:
                stopped_early = True
                break
            if stop_after is not None and self.epoch >= stop_after:
                break
        return Outcome(
            run_dir=self.run_dir,
            strategy=self.opts.strategy,
            best_epoch=int(self.best["epoch"]),
            val_acc=float(self.best["val_acc"]),
            val_f1=float(self.best["val_f1"]),
            trainable_params=int(self.trainable),
            wall_seconds=time.perf_counter() - start,
            history=self.history,
            stopped_early=stopped_early,
        )


def _out_of_memory(opts: ClassifyOptions) -> TrainingError:
    precision = "" if opts.precision and "16" in opts.precision else " or --precision bf16-mixed (GPU)"
    return TrainingError(
        f"out of memory at batch size {opts.batch_size}",
        f"use --batch-size {max(1, opts.batch_size // 2)} (with --accumulate {opts.accumulate * 2} to keep the "
        f"effective batch){precision}, or a smaller --img-size",
    )
