"""Detection training, top to bottom: images and boxes held once (any sizes); per step a share of
images scale-jittered (longer side 0.75-1.25 x ``img_size``), cropped to ``img_size``, flipped and
colour-jittered, boxes moved with them (torchvision's v2 functional ops on ``BoundingBoxes``); the
detector's own losses; AdamW with a linear warm-up and a cosine decay, the backbone at the strategy's
rate; held-out mAP (COCO's definition) every few epochs; the best epoch's weights are the run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as TF

from transferlab import backbones
from transferlab.dense import encoder_spec, strategy_optimizer
from transferlab.engine.batches import BatchDraw
from transferlab.engine.dense import DenseRecipe
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import performance_of, unwrap
from transferlab.engine.session import TrainingSession, fingerprint
from transferlab.errors import UsageError
from transferlab.options.detect import DetectOptions
from transferlab.robustness import corrupted_crops
from transferlab.runs import DETECTOR
from transferlab.strategies import DETECT, Strategy, get_strategy
from transferlab.tasks.detect.data import DetectionData, Split, load_detection
from transferlab.tasks.detect.inference import score
from transferlab.tasks.detect.models import DETECTORS, Detector, build_detector
from transferlab.tasks.detect.report import DetectResult, write_report

TASK = "detect"
METRICS = ("epoch", "step", "loss", "map", "map_50", "map_75", "recall", "lr", "seconds")
#: Random scales of the training images' longer side, relative to ``img_size``.
SCALES = (0.75, 1.25)
#: Brightness, contrast and saturation factors are drawn from 1 +- this.
COLOUR_JITTER = 0.25
#: A box cut by the crop is kept when at least this part of it stays in the picture.
MIN_VISIBLE = 0.4
WARMUP_STEPS = 100


def jittered(
    image: torch.Tensor, boxes: torch.Tensor, size: int, scale: float, corner: list[float], flip: bool,
    colour: list[float],
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The image resized so its longer side is ``size * scale``, cropped to at most ``size`` square
    at ``corner``, mirrored when ``flip``, colour-jittered by the factors ``colour``; its boxes moved
    alike (those mostly cut away dropped). Returns (uint8 image, kept box indices and boxes)."""
    h, w = image.shape[-2:]
    factor = size * scale / max(h, w)
    h2, w2 = max(1, round(h * factor)), max(1, round(w * factor))
    img = TF.resize(tv_tensors.Image(image), [h2, w2], antialias=True)
    box = TF.resize(tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w)), [h2, w2])
    area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    ch, cw = min(h2, size), min(w2, size)
    top, left = int(corner[0] * (h2 - ch + 1)), int(corner[1] * (w2 - cw + 1))
    img, box = TF.crop(img, top, left, ch, cw), TF.clamp_bounding_boxes(TF.crop(box, top, left, ch, cw))
    if flip:
        img, box = TF.horizontal_flip(img), TF.horizontal_flip(box)
    img = TF.adjust_saturation(TF.adjust_contrast(TF.adjust_brightness(img, colour[0]), colour[1]), colour[2])
    kept_area = (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])
    keep = (kept_area >= MIN_VISIBLE * area) & (box[:, 2] - box[:, 0] >= 2) & (box[:, 3] - box[:, 1] >= 2)
    return img.as_subclass(torch.Tensor), torch.cat([keep[:, None].float(), box.as_subclass(torch.Tensor)], 1)


def shrunk(split: Split, longest: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The training images (and their boxes) with the longer side at most ``longest``, once: each
    step then resizes from a small picture, not from a photo (measured: the step's augmentation
    took as long as its resize from 1024 px)."""
    images, boxes = [], []
    for image, box in zip(split.images, split.boxes):
        factor = min(1.0, longest / max(image.shape[-2:]))
        if factor < 1:
            size = [round(image.shape[-2] * factor), round(image.shape[-1] * factor)]
            image, box = TF.resize(image, size, antialias=True), box * factor
        images.append(image)
        boxes.append(box)
    return images, boxes


def read_data(data: Any, opts: DetectOptions) -> DetectionData:
    """DATA (or the ``--images/--annotations`` pair) as the options say to read and split it."""
    return load_detection(
        data, images=opts.images, annotations=opts.annotations, val_images=opts.val_images,
        val_annotations=opts.val_annotations, classes=opts.classes, val_fraction=opts.val_fraction, seed=opts.seed,
    )  # fmt: skip


def build_network(opts: DetectOptions, classes: int, pretrained: bool = True) -> Detector:
    spec = encoder_spec(opts.backbone, get_strategy(opts.strategy, DETECT))
    return build_detector(opts.detector, spec, classes, opts.img_size, opts.width, pretrained, opts.init,
                          opts.score_threshold)  # fmt: skip


class DetectRecipe(DenseRecipe[DetectOptions, DetectResult]):
    """Epochs of jittered images, the strategy's backbone rate, held-out mAP every few epochs."""

    task, options, metrics, result_type, weights_key = TASK, DetectOptions, METRICS, DetectResult, "backbone_weights"
    best_metric, logged = "map", ("map", "map_50", "map_75", "recall")
    title_format, name_format = "detecting ({detector}, {strategy}, {backbone})", "{detector}-{strategy}"
    command = "transferlab detect train {data}"

    def __init__(self, data: Any, opts: DetectOptions, fabric: Any, run_dir: Path) -> None:
        self.opts, self.fabric, self.run_dir = opts, fabric, run_dir
        self.data = data if isinstance(data, DetectionData) else read_data(data, opts)
        self.images, self.boxes = shrunk(self.data.train, math.ceil(opts.img_size * SCALES[1]))
        self.performance = performance_of(fabric)
        network = build_network(opts, len(self.data.classes))
        self.weights_source = network.net.weights_source
        self.strategy: Strategy = get_strategy(opts.strategy, DETECT)
        optimizer = strategy_optimizer(network, self.strategy, opts.epochs, opts.lr, weight_decay=1e-4)
        self.model, self.optimizer = setup_trained(fabric, network, optimizer)
        self.start_epochs()

    # ----------------------------------------------------------------- the contract

    @classmethod
    def check(cls, opts: DetectOptions) -> None:

        if opts.detector not in DETECTORS:
            raise UsageError(f"unknown --detector '{opts.detector}'", f"use one of: {', '.join(DETECTORS)}")
        if opts.init == "imagenet":
            backbones.check_name(backbones.resolve(opts.backbone).name)

    def fingerprint(self) -> str:
        data = self.data
        return fingerprint(*data.train.images, *data.train.boxes, *data.val.boxes, data.classes)

    # ----------------------------------------------------------------- a step

    def _set_rates(self) -> None:
        """Linear warm-up over the first steps, then cosine decay of --lr; the backbone at the
        strategy's scale of it (--encoder-lr-mult; none when frozen, the full rate from scratch)."""
        warmup = min(1.0, (self.step + 1) / min(WARMUP_STEPS, max(1, self.total() // 5)))
        rate = self.opts.lr * warmup * 0.5 * (1 + math.cos(math.pi * self.step / max(1, self.total())))
        mult = self.encoder_scale()
        for group, r in zip(self.optimizer.param_groups, [rate * mult, rate][-len(self.optimizer.param_groups) :]):
            group["lr"] = r

    def batch(self, draw: BatchDraw) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
        """This process's share of the step's jittered images (float in [0, 1]) and their targets
        (difficult boxes left out of training, as the metric leaves them out)."""
        train, opts = self.data.train, self.opts
        index, scale = draw.indices(len(train)).tolist(), draw.uniform().tolist()
        corners, flips, colours = draw.uniform(2).tolist(), draw.flips().tolist(), draw.uniform(3).tolist()
        images, targets = [], []
        for i, s, corner, flip, colour in zip(index, scale, corners, flips, colours):
            factor = SCALES[0] * (SCALES[1] / SCALES[0]) ** s  # log-uniform
            jitter = [1 + COLOUR_JITTER * (2 * c - 1) for c in colour]
            image, boxes = jittered(self.images[i], self.boxes[i], opts.img_size, factor, corner, flip, jitter)
            keep = (boxes[:, 0] > 0) & ~train.difficult[i]
            images.append(image)
            targets.append({"boxes": boxes[keep, 1:].to(self.fabric.device),
                            "labels": train.labels[i][keep].to(self.fabric.device)})  # fmt: skip
        if opts.corrupt:  # drawn after the rest: without it a step draws what it always drew
            images = corrupted_crops(images, draw, opts.corrupt)
        return [image.to(self.fabric.device).float().div_(255) for image in images], targets

    def train_mode(self) -> None:
        self.model.train()
        if self.strategy.pretrained:  # pretrained BatchNorm statistics stay (batches are small)
            unwrap(self.model).encoder.eval()

    def train_step(self, session: TrainingSession) -> dict[str, float]:
        self._set_rates()
        images, targets = self.batch(BatchDraw.for_step(self.opts.seed, self.step, self.opts.batch_size, self.fabric))
        with self.fabric.autocast():
            losses = self.model(images, targets)
        loss = sum(losses.values())
        session.check_finite(loss.detach(), f"step {self.step + 1}", "lower --lr")
        self.optimizer.zero_grad(set_to_none=True)
        self.fabric.backward(loss)
        self.optimizer.step()
        self.step += 1
        return {"loss": float(loss.detach())}

    def held_out(self) -> tuple[dict[str, Any], list[dict[str, torch.Tensor]]]:
        """COCO mAP of the held-out images, and their detections (the report draws them)."""
        return score(unwrap(self.model), self.data.val, self.data.classes, self.opts.batch_size,
                     performance=self.performance)  # fmt: skip

    def describe(self, scores: dict[str, Any]) -> str:
        return f"held-out mAP {scores['map']:.3f} (@.5 {scores['map_50']:.3f})"

    # ----------------------------------------------------------------- outputs

    def model_spec(self) -> dict[str, Any]:
        opts, net = self.opts, unwrap(self.model)
        return {"kind": DETECTOR, "detector": opts.detector, "backbone": net.net.architecture, "init": opts.init,
                "width": opts.width, "img_size": opts.img_size, "num_classes": len(self.data.classes),
                "score_threshold": opts.score_threshold}  # fmt: skip

    def preprocessing(self) -> dict[str, Any]:
        return {"input": "RGB in [0, 1]", "longer_side": self.opts.img_size}

    def write_report(self, name: str, seconds: float) -> DetectResult:
        return write_report(self, name, seconds)
