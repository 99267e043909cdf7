"""The task registry: every job transferlab does, declared once.

A task is its folder (``tasks/NAME``: the recipe, its Python API ``transferlab.NAME``), its options
dataclass (``options/NAME.py``), its command-line face (``cli/NAME.py``, one function per command)
and **one record here**. The records feed everything that lists tasks: the CLI's commands and group
help, the run kinds (``runs.KINDS``) and their loaders, the server's kinds and endpoints, the export
formats, ``transferlab.NAME`` and ``transferlab tasks``.

Why the records live here and not in the task folders: a task folder imports torch, and the CLI
(``transferlab --help``) must not. So the records are plain data; what they lead to is found by
convention, never by a module path in a string: the task's API is ``transferlab.tasks.NAME``, its
commands are the functions of ``transferlab.cli.NAME`` named after their last word, and a task
whose runs hold models loads them with its API's ``load_run(run_dir, ...)``. ``tests/test_registry.py``
checks every record against what it names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from transferlab.options.adapt import AdaptOptions
from transferlab.options.autoencoder import AutoencoderOptions
from transferlab.options.classify import ClassifyOptions
from transferlab.options.detect import DetectOptions
from transferlab.options.distill import DistillOptions
from transferlab.options.gan import GanOptions
from transferlab.options.segment import SegmentOptions
from transferlab.options.stylize import StyleTrainOptions
from transferlab.options.translate import TranslateOptions

CLASSIFIER, GAN, STYLE = "timm-classifier", "gan", "style-transformer"
TRANSLATOR, AUTOENCODER, SEGMENTER, DETECTOR = "translator", "autoencoder", "segmenter", "detector"


@dataclass(frozen=True)
class Command:
    """One command of a task: its full name on the command line and the example its help shows.
    ``function`` names the function in ``cli/TASK.py`` (default: the command's last word)."""

    name: str
    example: str
    function: str = ""

    @property
    def function_name(self) -> str:
        return self.function or self.name.split()[-1]


@dataclass(frozen=True)
class RunKind:
    """A kind of model a run holds (``run.json`` model.kind): what it is, which command makes it
    and which commands take it (for the error a run of another kind gets)."""

    name: str
    description: str
    made_by: str
    accepted_by: tuple[str, ...]


@dataclass(frozen=True)
class Served:
    """How the server serves a run kind: the kind's name in ``/models`` and its endpoints."""

    name: str
    endpoints: tuple[str, ...]


@dataclass(frozen=True)
class Tuning:
    """How ``transferlab tune`` and ``lr-find`` treat a task: ``metric``, the held-out score its
    runs log to ``metrics.csv`` at each scoring (the objective, reported to the pruner as it
    comes), its ``direction``; ``keeps_best``: whether the run keeps its best scoring (else its
    last, the objective then); ``space``: the default search space (``tune/space.py``'s format)."""

    metric: str
    space: dict[str, Any]
    direction: str = "maximize"
    keeps_best: bool = True


_LOG = True  # the spaces below: rates and decays are searched on a log scale
_CLASSIFY_SPACE = {
    "lr": {"low": 1e-4, "high": 1e-2, "log": _LOG},
    "strategy": ["full", "gradual", "llrd"],
    "body_lr_mult": {"low": 0.01, "high": 1.0, "log": _LOG},
    "weight_decay": {"low": 1e-4, "high": 0.1, "log": _LOG},
    "label_smoothing": {"low": 0.0, "high": 0.2},
    "crop_scale": {"low": 0.08, "high": 0.8},
    "mixup": {"low": 0.0, "high": 0.4},
}


@dataclass(frozen=True)
class Task:
    """One job transferlab does. ``options``: its training options (none for inference-only jobs);
    ``makes``: the kinds of run it writes; ``serves``: run kind -> how the server serves it;
    ``exports``: the formats ``transferlab export`` writes its runs in; ``robustness``: the metric
    its ``evaluate --corruptions`` scores under ImageNet-C's corruptions (its API's ``evaluate``
    takes ``corruptions``, ``severities`` and ``seed``)."""

    name: str
    summary: str
    commands: tuple[Command, ...]
    options: type | None = None
    makes: tuple[RunKind, ...] = ()
    serves: dict[str, Served] = field(default_factory=dict)
    exports: tuple[str, ...] = ()
    robustness: str | None = None
    tuning: Tuning | None = None

    def api(self) -> ModuleType:
        """``transferlab.tasks.NAME``: the task's Python API (imports torch)."""
        return importlib.import_module(f"{__package__}.tasks.{self.name}")

    def recipe(self) -> Any:
        """The task's training recipe class (its API's ``RECIPE``): what ``lr-find`` sweeps."""
        return self.api().RECIPE

    def cli(self) -> ModuleType:
        """``transferlab.cli.NAME``: one function per command (light: no torch)."""
        return importlib.import_module(f"{__package__}.cli.{self.name}")

    @property
    def group(self) -> str | None:
        """The command group (``segment`` of ``segment train``), if its commands form one."""
        heads = {c.name.split()[0] for c in self.commands if " " in c.name}
        return next(iter(heads)) if heads else None

    def describe(self) -> dict[str, Any]:
        """What ``transferlab tasks --json`` says about the task."""
        return {
            "name": self.name,
            "summary": self.summary,
            "python": f"transferlab.{self.name}",
            "commands": [c.name for c in self.commands],
            "run_kinds": [k.name for k in self.makes],
            "serve_endpoints": [e for s in self.serves.values() for e in s.endpoints],
            "export_formats": list(self.exports),
            "explained": [k.name for k in self.makes if "explain" in k.accepted_by],
            "corruptions_metric": self.robustness,
            "tuned_metric": self.tuning.metric if self.tuning else None,
            "options": self.options.__name__ if self.options else None,
        }


_CLASSIFIER = RunKind(
    CLASSIFIER, "an image classifier (any timm backbone and its head)", "transferlab classify (or adapt, distill)",
    ("predict", "evaluate", "explain", "export", "serve", "classify --backbone run:RUN", "translate --backbone run:RUN",
     "gan --fid-features run:RUN"),
)  # fmt: skip

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "classify",
            "Fine-tune a pretrained backbone on labelled images, always beside the same network from scratch.",
            (Command("classify", "transferlab classify photos/ --compare scratch,linear,full --img-size 128"),
             Command("evaluate", "transferlab evaluate runs/classify/my-run more_photos/")),
            ClassifyOptions,
            makes=(_CLASSIFIER,),
            serves={CLASSIFIER: Served("classifier", ("POST /models/{name}/predict", "POST /v2/models/{name}/infer"))},
            exports=("onnx", "torchscript"),
            robustness="accuracy",
            tuning=Tuning("val_acc", _CLASSIFY_SPACE),
        ),
        Task(
            "distill",
            "A small fast classifier from a large fine-tuned one (knowledge distillation: KD, DIST); its runs are "
            "classifiers.",
            (Command("distill", "transferlab distill runs/classify/lite2-run photos/ --student tf_efficientnet_lite0 "
                     "--unlabelled more_photos/"),),
            DistillOptions,
            tuning=Tuning("val_acc", {**_CLASSIFY_SPACE, "temperature": {"low": 1.0, "high": 8.0},
                                      "alpha": {"low": 0.1, "high": 0.9}}),
        ),
        Task(
            "predict",
            "Top-k classes of images from an ImageNet model by name or a trained classifier run.",
            (Command("predict", "transferlab predict cat.jpg photos/ --model tf_efficientnet_lite0 --topk 3"),),
        ),
        Task(
            "explain",
            "Class activation maps (Grad-CAM and kin) of classifier, segmenter and detector runs over whole images.",
            (Command("explain", "transferlab explain runs/classify/my-run photo.jpg photos/ -o maps/ --method "
                     "gradcam --json"),),
        ),
        Task(
            "features",
            "Pooled features of a backbone (.npz / .parquet), and backbones ranked for a dataset (LogME).",
            (Command("features", "transferlab features photos/ --backbone tf_efficientnet_lite0 -o f.npz"),
             Command("rank", "transferlab rank photos/ --backbones tf_efficientnet_lite0,tf_efficientnet_lite2")),
        ),
        Task(
            "adapt",
            "Domain adaptation (DANN, CDAN, CORAL, joint) from a labelled source, beside source-only; its runs "
            "are classifiers.",
            (Command("adapt", "transferlab adapt --source mnist_folder/ --target usps_folder/ --method dann,cdan"),),
            AdaptOptions,
        ),
        Task(
            "autoencoder",
            "Pretrain an autoencoder on unlabelled images; transfer its encoder with --backbone ae:RUN.",
            (Command("autoencoder pretrain", "transferlab autoencoder pretrain unlabelled/ --img-size 32 "
                     "(then: classify DATA --backbone ae:RUN)"),),
            AutoencoderOptions,
            makes=(RunKind(AUTOENCODER, "a pretrained encoder", "transferlab autoencoder pretrain",
                           ("classify --backbone ae:RUN", "translate --backbone ae:RUN")),),
        ),
        Task(
            "gan",
            "Train GANs, transfer into them (--init/--freeze-d, --d-features lite0), sample from them.",
            (Command("gan train", "transferlab gan train faces.zip --init runs/gan/source --freeze-d 2 --steps 3000"),
             Command("gan sample", "transferlab gan sample runs/gan/faces -n 64 --seed 1 --interpolate 8")),
            GanOptions,
            makes=(RunKind(GAN, "a generator and its discriminator", "transferlab gan train",
                           ("gan sample", "serve", "gan --init", "classify --augment-with", "translate --d-init")),),
            serves={GAN: Served("gan", ("GET|POST /models/{name}/generate", "GET|POST /models/{name}/interpolate"))},
        ),
        Task(
            "stylize",
            "Neural style transfer: one image by optimisation, or a feed-forward style network trained once.",
            (Command("stylize", "transferlab stylize photo.jpg --style starry_night.jpg --size 512 | transferlab "
                     "stylize photos/ --model runs/stylize/my-style (train one: transferlab stylize train --help)"),
             Command("stylize train", "transferlab stylize train starry_night.jpg --content photos/ --steps 2000")),
            StyleTrainOptions,
            makes=(RunKind(STYLE, "a feed-forward style network", "transferlab stylize train",
                           ("stylize --model", "serve")),),
            serves={STYLE: Served("style", ("POST /models/{name}/stylize",))},
        ),
        Task(
            "translate",
            "Image-to-image translation on U-Nets with pretrained encoders: train, evaluate, apply.",
            (Command("translate train", "transferlab translate train photos/ --task colorize --compare "
                     "scratch,imagenet --steps 2000"),
             Command("translate evaluate", "transferlab translate evaluate runs/translate/my-run photos/"),
             Command("translate apply", "transferlab translate apply runs/translate/my-run old.jpg -o coloured/")),
            TranslateOptions,
            makes=(RunKind(TRANSLATOR, "an image-to-image U-Net", "transferlab translate train",
                           ("translate apply", "translate evaluate")),),
            tuning=Tuning("lite0_distance", {"lr": {"low": 5e-5, "high": 1e-3, "log": _LOG},
                                             "encoder_lr_mult": {"low": 0.01, "high": 1.0, "log": _LOG},
                                             "perceptual_weight": {"low": 0.0, "high": 0.3}},
                          direction="minimize", keeps_best=False),
        ),
        Task(
            "segment",
            "Semantic segmentation on pretrained encoders (U-Net, FPN): train, evaluate, apply.",
            (Command("segment train", "transferlab segment train membrane/ --compare scratch,frozen,full"),
             Command("segment evaluate", "transferlab segment evaluate runs/segment/my-run --images test/ "
                     "--masks testannot/ --json"),
             Command("segment apply", "transferlab segment apply runs/segment/my-run slices/ -o masks/")),
            SegmentOptions,
            makes=(RunKind(SEGMENTER, "a semantic segmentation network", "transferlab segment train",
                           ("segment evaluate", "segment apply", "explain", "export", "serve")),),
            serves={SEGMENTER: Served("segmenter", ("POST /models/{name}/segment",))},
            exports=("onnx", "torchscript"),
            robustness="miou",
            tuning=Tuning("miou", {"lr": {"low": 3e-4, "high": 1e-2, "log": _LOG},
                                   "encoder_lr_mult": {"low": 0.01, "high": 1.0, "log": _LOG},
                                   "weight_decay": {"low": 1e-5, "high": 1e-2, "log": _LOG},
                                   "loss": ["ce+dice", "ce", "focal+dice"], "schedule": ["constant", "cosine"],
                                   "scales": ["0.75,1.5", "0.5,2", "1,1"]}),
        ),
        Task(
            "detect",
            "Object detection on pretrained backbones (FCOS, RetinaNet, Faster R-CNN): train, evaluate, apply.",
            (Command("detect train", "transferlab detect train kangaroo/ --compare scratch,frozen,full"),
             Command("detect evaluate", "transferlab detect evaluate runs/detect/my-run more/ --json"),
             Command("detect apply", "transferlab detect apply runs/detect/my-run photos/ -o boxes/")),
            DetectOptions,
            makes=(RunKind(DETECTOR, "an object detector", "transferlab detect train",
                           ("detect evaluate", "detect apply", "explain", "export", "serve")),),
            serves={DETECTOR: Served("detector", ("POST /models/{name}/detect",))},
            exports=("onnx",),
            robustness="map_50",
            tuning=Tuning("map", {"lr": {"low": 3e-4, "high": 3e-3, "log": _LOG},
                                  "encoder_lr_mult": {"low": 0.01, "high": 1.0, "log": _LOG}}),
        ),
    )
}  # fmt: skip

#: Every run kind by name, and the task that makes (and loads) it.
RUN_KINDS: dict[str, RunKind] = {kind.name: kind for task in TASKS.values() for kind in task.makes}
OWNERS: dict[str, Task] = {kind.name: task for task in TASKS.values() for kind in task.makes}


def load_run(kind: str, run_dir: Any, *args: Any, **kwargs: Any) -> Any:
    """The model of a run of ``kind``, loaded by the task that makes it (its API's ``load_run``)."""
    return OWNERS[kind].api().load_run(run_dir, *args, **kwargs)
