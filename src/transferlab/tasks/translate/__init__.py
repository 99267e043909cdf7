"""``translate``: image-to-image translation on U-Nets whose encoders are pretrained backbones.

from transferlab import translate
run = translate.train("photos/", task="colorize", backbone="tf_efficientnet_lite0", steps=2000)
table = translate.compare("photos/", ["scratch", "imagenet", "ae:runs/ae"], task="superres")
translate.evaluate(run.run_dir, "more_photos/")
translate.apply(run.run_dir, ["old_photo.jpg"], out="coloured/")
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from transferlab.data.images import collect_images
from transferlab.devices import resolve_device
from transferlab.engine.performance import for_inference
from transferlab.engine.run import run
from transferlab.errors import RunError, UsageError
from transferlab.io import write_json
from transferlab.options.translate import TranslateOptions
from transferlab.progress import track
from transferlab.runs import default_run_dir, folder_name, read_run
from transferlab.tasks.translate.data import load_pairs
from transferlab.tasks.translate.networks import GENERATORS
from transferlab.tasks.translate.recipe import MODEL_KIND, TranslateRecipe, score, translate_batches
from transferlab.tasks.translate.report import TranslateResult, write_comparison
from transferlab.tasks.translate.tiles import translate_file

#: The training recipe (``registry.Task.recipe``: what ``lr-find`` sweeps and ``tune`` trains).
RECIPE = TranslateRecipe

__all__ = ["TranslateOptions", "TranslateResult", "apply", "compare", "evaluate", "load_run", "load_translator",
           "train"]  # fmt: skip


def train(
    data: Any,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    name: str = "",
    **options: Any,
) -> TranslateResult:
    """Train a translation network on DATA; write the run, grids, curves and ``report.html``."""

    return run(TranslateRecipe, data, out=out, resume=resume, stop_after=stop_after, name=name, **options)


def encoder_specs(entries: list[str], backbone: str) -> dict[str, str]:
    """``--compare`` entries -> backbone specs: ``scratch`` (random init), ``imagenet`` (pretrained),
    or any spec itself (``ae:RUN``, ``run:RUN``, another timm name)."""
    named = {"scratch": f"{backbone}:random", "imagenet": backbone}
    return {entry: named.get(entry, entry) for entry in entries}


def compare(data: Any, entries: list[str], *, out: str | Path | None = None, **options: Any) -> list[TranslateResult]:
    """The same task, budget and seed with each encoder; one table (``comparison.csv/json``) and
    one report with the held-out grids side by side."""

    opts = TranslateOptions(**{k: v for k, v in options.items() if v is not None})
    opts.check()
    TranslateRecipe.check(opts)
    if not entries:
        raise UsageError("--compare needs encoders", "e.g. --compare scratch,imagenet,ae:runs/ae")
    root = Path(out) if out else default_run_dir("translate", f"{opts.task}-compare")
    results = []
    for label, spec in encoder_specs(entries, opts.backbone).items():
        run_options = {**asdict(opts), "backbone": spec}
        results.append(train(data, out=root / folder_name(label), name=label, **run_options))
    write_comparison(root, results, opts)
    return results


def load_translator(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained network of a translate run and its spec; a run of another kind is refused."""
    from safetensors.torch import load_file

    run = read_run(run_dir, model_kind=MODEL_KIND)
    spec = run.model
    try:
        net = GENERATORS[spec["generator"]](spec["backbone"], int(spec["in_channels"]), int(spec["img_size"]),
                                            int(spec["width"]), pretrained=False)  # fmt: skip
        net.load_state_dict(load_file(str(run.weights_path)))
    except (KeyError, RuntimeError) as exc:
        raise RunError(
            f"the weights of {run_dir} do not fit its network ({str(exc).splitlines()[0][:100]})",
            "retrain it with `transferlab translate train`",
        ) from None
    return net.to(device).eval(), spec


#: The registry's loader of this task's runs (``registry.load_run``): (network, its spec).
load_run = load_translator


def evaluate(run_dir: str | Path, data: Any, *, device: str = "auto") -> dict[str, Any]:
    """PSNR, SSIM and the Lite0 perceptual distance of a run on DATA (every image is held out):
    photos for the self-supervised tasks, A/B pairs for ``paired``. Written to the run's evaluations."""

    dev = resolve_device(device)
    net, spec = load_translator(run_dir, dev)
    opts = TranslateOptions(**spec["options"])
    performance = for_inference(dev, TranslateOptions.cpu_defaults)  # as the run trained
    pairs = load_pairs(data, opts.task, opts.img_size, opts.seed, val_fraction=1.0)  # all of DATA held out
    x, y = pairs.held_out(opts.task, opts)
    output = translate_batches(net, x, performance)
    scores = {**score(output, y, opts.task), "images": len(y), "task": opts.task, "data": pairs.description}
    folder = Path(run_dir) / "evaluations" / folder_name(Path(str(data)).name)
    write_json(folder / "translate.json", scores)
    return scores


def apply(
    run_dir: str | Path,
    inputs: list[str | Path],
    *,
    out: str | Path = "translated",
    batch_size: int = 8,
    tile: int = 256,
    device: str = "auto",
) -> list[Path]:
    """Translate images of any size: each is padded to the encoder's stride, and one larger than
    ``tile`` is done in overlapping tiles blended together. Returns the written files."""

    if tile < 64 or tile % 32:
        raise UsageError(f"--tile {tile} is not a multiple of 32 of at least 64", "e.g. --tile 256")
    net, spec = load_translator(run_dir, resolve_device(device))
    files = collect_images(inputs)  # none found is its refusal
    out = Path(out)

    return [translate_file(net, spec, path, out, tile, batch_size) for path in track(files, "translating", len(files))]
