"""Segmentation training, top to bottom: images and masks held once (any sizes), per step a share
of random scaled crops with flips (image and mask moved together by torchvision's v2 functional
ops: nearest for masks), the loss (CE + Dice by default), AdamW at a constant rate or on a cosine
schedule (``--schedule``: constant on a CPU) with the strategy's encoder rate; per epoch held-out
mIoU at each mask's own resolution; the best epoch's weights are the run."""

from __future__ import annotations

import math
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from transferlab import backbones
from transferlab.dense import DECODERS, encoder_spec, strategy_optimizer
from transferlab.engine.batches import BatchDraw
from transferlab.engine.dense import DenseRecipe
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import performance_of, unwrap
from transferlab.engine.session import TrainingSession, fingerprint
from transferlab.errors import UsageError
from transferlab.options.segment import SegmentOptions
from transferlab.pixels import whole_image_size
from transferlab.robustness import corrupted_crops
from transferlab.runs import SEGMENTER
from transferlab.strategies import SEGMENT, Strategy, get_strategy
from transferlab.tasks.segment.data import SegmentationData, load_segmentation
from transferlab.tasks.segment.inference import score
from transferlab.tasks.segment.losses import SegmentationLoss
from transferlab.tasks.segment.report import SegmentResult, write_report

TASK = "segment"
#: 2: ``unet`` is smp's layout; runs saved before (no version) name the layout now ``unet-transposed``.
DECODER_VERSION = 2
METRICS = ("epoch", "step", "loss", "miou", "pixel_accuracy", "class_accuracy", "mean_dice", "lr", "seconds")


def crop_shape(images: list[torch.Tensor], img_size: int, crop: str) -> tuple[int, int]:
    """The training crop (height, width): square, or the images' median aspect ("frame") at the
    scoring size, so that at scale 1 a crop of a typical image is the whole image."""
    if crop == "square":
        return img_size, img_size
    aspects = sorted(img.shape[-1] / img.shape[-2] for img in images)
    return whole_image_size(1000, round(1000 * aspects[len(aspects) // 2]), img_size)


def random_crop(
    image: torch.Tensor, mask: torch.Tensor, size: tuple[int, int], scale: float, corner: torch.Tensor,
    flip: bool, ignore: int,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """A crop of ``size`` (height, width) of the image scaled by ``scale`` relative to its scoring
    size (mask alike, nearest; padded with void where the scaled image is smaller), mirrored when
    ``flip``."""
    ch, cw = size
    h, w = whole_image_size(*image.shape[-2:], round(min(ch, cw) * scale))
    img = TF.resize(tv_tensors.Image(image), [h, w], antialias=True)
    lab = TF.resize(tv_tensors.Mask(mask[None]), [h, w])  # a Mask is resized with nearest neighbours
    if h < ch or w < cw:
        pad = [0, 0, max(0, cw - w), max(0, ch - h)]
        img, lab = TF.pad(img, pad, fill=0), TF.pad(lab, pad, fill=ignore)
        h, w = max(h, ch), max(w, cw)
    top, left = int(corner[0] * (h - ch + 1)), int(corner[1] * (w - cw + 1))
    img, lab = TF.crop(img, top, left, ch, cw), TF.crop(lab, top, left, ch, cw)
    if flip:
        img, lab = TF.horizontal_flip(img), TF.horizontal_flip(lab)
    return img.as_subclass(torch.Tensor), lab.as_subclass(torch.Tensor)[0]


def read_data(data: Any, opts: SegmentOptions) -> SegmentationData:
    """DATA (or the ``--images/--masks`` folders) as the options say to read and split it."""
    return load_segmentation(
        data, images=opts.images, masks=opts.masks, val_images=opts.val_images, val_masks=opts.val_masks,
        classes=opts.classes, ignore_index=opts.ignore_index, val_fraction=opts.val_fraction, seed=opts.seed,
    )  # fmt: skip


def build_network(opts: SegmentOptions, classes: int, pretrained: bool = True) -> nn.Module:

    spec = encoder_spec(opts.backbone, get_strategy(opts.strategy, SEGMENT))
    return DECODERS[opts.decoder](spec, 3, opts.img_size, opts.width, pretrained, classes)


class SegmentRecipe(DenseRecipe[SegmentOptions, SegmentResult]):
    """Epochs of random scaled crops, the strategy's encoder rate, held-out mIoU per epoch."""

    task, options, metrics, result_type = TASK, SegmentOptions, METRICS, SegmentResult
    best_metric, logged = "miou", ("miou", "pixel_accuracy", "class_accuracy", "mean_dice")
    title_format, name_format = "segmenting ({strategy}, {backbone})", "{decoder}-{strategy}"
    command = "transferlab segment train {data}"

    def __init__(self, data: Any, opts: SegmentOptions, fabric: Any, run_dir: Path) -> None:
        self.opts, self.fabric, self.run_dir = opts, fabric, run_dir
        self.data = data if isinstance(data, SegmentationData) else read_data(data, opts)
        self.performance = performance_of(fabric)
        network = build_network(opts, len(self.data.classes))
        self.weights_source = network.weights_source
        self.strategy: Strategy = get_strategy(opts.strategy, SEGMENT)
        optimizer = strategy_optimizer(network, self.strategy, opts.epochs, opts.lr, opts.weight_decay)
        self.model, self.optimizer = setup_trained(fabric, network, optimizer)
        weights = self._class_weights() if opts.class_weights == "balanced" else None
        self.loss = SegmentationLoss(opts.loss, opts.ignore_index, weights).to(fabric.device)
        self.start_epochs()

    # ----------------------------------------------------------------- the contract

    @classmethod
    def check(cls, opts: SegmentOptions) -> None:
        if opts.decoder not in DECODERS:
            raise UsageError(f"unknown --decoder '{opts.decoder}'", f"use one of: {', '.join(DECODERS)}")
        backbones.check_name(backbones.resolve(opts.backbone).name)

    def fingerprint(self) -> str:
        data = self.data
        return fingerprint(*data.train.images, *data.train.masks, *data.val.masks, data.classes)

    # ----------------------------------------------------------------- the loop

    def _class_weights(self) -> torch.Tensor:
        """Inverse pixel frequency over the training masks, normalised to mean 1 (void left out)."""
        counts = sum(torch.bincount(m[m != self.opts.ignore_index].flatten(), minlength=len(self.data.classes))
                     for m in self.data.train.masks)  # fmt: skip
        inverse = 1 / counts.double().clamp(min=1)
        return (inverse / inverse.mean()).float()

    def _set_rates(self) -> None:
        """--lr (cosine decay or constant); the encoder at the strategy's scale of it (--encoder-lr-mult;
        none while frozen)."""
        decay = 1.0
        if self.opts.schedule == "cosine":
            decay = 0.5 * (1 + math.cos(math.pi * self.step / max(1, self.total())))
        mult = self.encoder_scale()
        rates = [self.opts.lr * decay * mult, self.opts.lr * decay]
        for group, rate in zip(self.optimizer.param_groups, rates[-len(self.optimizer.param_groups) :]):
            group["lr"] = rate

    def batch(self, draw: BatchDraw) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's share of the step's crops: images in [0, 1] and class-index masks."""
        train, opts = self.data.train, self.opts
        index, scale = draw.indices(len(train)).tolist(), draw.uniform()
        corners, flips = draw.uniform(2), draw.flips().tolist()
        low, high = self.scales
        scales = (low * (high / low) ** scale).tolist()  # log-uniform
        pairs = [random_crop(train.images[i], train.masks[i], self.crop, s, c, f, opts.ignore_index)
                 for i, s, c, f in zip(index, scales, corners, flips)]  # fmt: skip
        crops = [p[0] for p in pairs]
        if opts.corrupt:  # drawn after the rest: without it a step draws what it always drew
            crops = corrupted_crops(crops, draw, opts.corrupt)
        x = torch.stack(crops).float().div_(255)
        return self.performance.inputs(x.to(self.fabric.device)), torch.stack([p[1] for p in pairs]).to(
            self.fabric.device
        )

    @cached_property
    def crop(self) -> tuple[int, int]:
        """The training crop's (height, width), from --crop and the training images."""
        return crop_shape(self.data.train.images, self.opts.img_size, self.opts.crop)

    @cached_property
    def scales(self) -> tuple[float, float]:
        """--scales parsed once, not at every step."""
        return self.opts.scale_range()

    def train_step(self, session: TrainingSession) -> dict[str, float]:
        self._set_rates()
        x, y = self.batch(BatchDraw.for_step(self.opts.seed, self.step, self.opts.batch_size, self.fabric))
        with self.fabric.autocast():
            loss = self.loss(self.model(x), y)
        session.check_finite(loss.detach(), f"step {self.step + 1}", "lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        self.optimizer.step()
        self.step += 1
        return {"loss": float(loss.detach())}

    def train_mode(self) -> None:
        self.model.train()
        if self.strategy.body_frozen(self.epoch, self.epochs, 2):  # frozen means frozen: BatchNorm statistics too
            unwrap(self.model).encoder.eval()

    def describe(self, scores: dict[str, Any]) -> str:
        return f"held-out mIoU {scores['miou']:.3f}"

    def held_out(self) -> tuple[dict[str, Any], None]:
        """mIoU, accuracies and Dice of the held-out images, each at its own resolution."""
        scores = score(unwrap(self.model), self.data.val, self.data.classes, self.opts.ignore_index,
                       self.opts.prediction_side(), self.performance)  # fmt: skip
        return scores, None

    # ----------------------------------------------------------------- outputs

    def model_spec(self) -> dict[str, Any]:
        opts, net = self.opts, unwrap(self.model)
        return {"kind": SEGMENTER, "decoder": opts.decoder, "decoder_version": DECODER_VERSION,
                "backbone": net.architecture, "width": opts.width,
                "img_size": opts.img_size, "predict_size": opts.prediction_side(),
                "num_classes": len(self.data.classes), "ignore_index": opts.ignore_index,
                "colours": [list(c) for c in self.data.colours]}  # fmt: skip

    def preprocessing(self) -> dict[str, Any]:
        return {"input": "RGB in [0, 1]", "shorter_side": self.opts.prediction_side()}

    def write_report(self, name: str, seconds: float) -> SegmentResult:
        return write_report(self, name, seconds)
