"""``translate``: image-to-image translation on U-Nets whose encoders are pretrained backbones.

from transferlab import translate
run = translate.train("photos/", task="colorize", backbone="tf_efficientnet_lite0", steps=2000)
table = translate.compare("photos/", ["scratch", "imagenet", "ae:runs/ae"], task="superres")
translate.evaluate(run.run_dir, "more_photos/")
translate.apply(run.run_dir, ["old_photo.jpg"], out="coloured/")
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from transferlab.errors import RunError, UsageError
from transferlab.options.translate import TranslateOptions
from transferlab.runs import default_run_dir

__all__ = ["TranslateOptions", "TranslateResult", "apply", "compare", "evaluate", "load_translator", "train"]


@dataclass
class TranslateResult:
    name: str
    run_dir: Path
    report: Path
    scores: dict[str, float]  # held-out psnr, ssim, lite0_distance at the end
    seconds: float
    weights_source: str = ""
    evaluations: list[dict[str, float]] = field(default_factory=list)


def _check(opts: TranslateOptions) -> None:
    from transferlab.tasks.translate.networks import GENERATORS

    opts.check_training()
    if opts.generator not in GENERATORS:
        raise UsageError(f"unknown --generator '{opts.generator}'", f"use one of: {', '.join(GENERATORS)}")
    if opts.scale not in (2, 4):
        raise UsageError(f"--scale {opts.scale} is not 2 or 4", "use --scale 2 or --scale 4")
    if opts.steps < 1 or opts.batch_size < 2 or opts.img_size < 32:
        raise UsageError("--steps >= 1, --batch-size >= 2 and --img-size >= 32 are needed", "e.g. --img-size 64")
    if (opts.d_init or opts.d_features != "none") and not opts.adversarial:
        raise UsageError("--d-init and --d-features choose the discriminator of --adversarial", "add --adversarial")


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
    from transferlab.engine import rng
    from transferlab.engine.options import fabric_for
    from transferlab.engine.session import RunSpec, TrainingSession, fingerprint, read_checkpoint, resumed_options
    from transferlab.tasks.translate.data import load_pairs
    from transferlab.tasks.translate.recipe import FIXED_ON_RESUME, METRICS, TASK, Translator

    start = time.perf_counter()
    state = read_checkpoint(Path(resume), TASK) if resume else None
    given = {k: v for k, v in options.items() if v is not None}
    opts = resumed_options(state, given, FIXED_ON_RESUME, TranslateOptions) if state else TranslateOptions(**given)
    _check(opts)
    run_dir = Path(resume) if resume else Path(out) if out else default_run_dir(TASK, f"{opts.task}-{opts.backbone}")
    fabric = fabric_for(opts)
    rng.seed_everything(opts.seed)
    pairs = load_pairs(data, opts.task, opts.img_size, opts.seed, opts.val_fraction)
    translator = Translator(pairs, opts, fabric)
    data_id = fingerprint(pairs.targets, pairs.inputs if pairs.inputs is not None else "", pairs.train)
    fixed = {k: getattr(opts, k) for k in FIXED_ON_RESUME}
    spec = RunSpec(TASK, run_dir, data_id, fixed, f"transferlab translate train {data} --task {opts.task}")
    title = f"translating ({opts.task}, {opts.backbone})"
    session = TrainingSession(spec, fabric, total=opts.steps, title=title, state=state, metrics=METRICS,
                              logger=opts.logger, checkpoint_every=opts.checkpoint_every)  # fmt: skip
    with session:
        if state is not None:
            translator.restore(state)
        translator.fit(session, stop_after)
    seconds = time.perf_counter() - start
    label = name or opts.backbone
    if translator.step < opts.steps or fabric.global_rank != 0:
        return TranslateResult(label, run_dir, run_dir / "report.html", {}, seconds, translator.weights_source)
    from transferlab.tasks.translate.report import write_run

    report = write_run(translator, run_dir, label, seconds)
    scores = translator.evaluations[-1]
    return TranslateResult(label, run_dir, report, scores, seconds, translator.weights_source, translator.evaluations)


def encoder_specs(entries: list[str], backbone: str) -> dict[str, str]:
    """``--compare`` entries -> backbone specs: ``scratch`` (random init), ``imagenet`` (pretrained),
    or any spec itself (``ae:RUN``, ``run:RUN``, another timm name)."""
    named = {"scratch": f"{backbone}:random", "imagenet": backbone}
    return {entry: named.get(entry, entry) for entry in entries}


def compare(data: Any, entries: list[str], *, out: str | Path | None = None, **options: Any) -> list[TranslateResult]:
    """The same task, budget and seed with each encoder; one table (``comparison.csv/json``) and
    one report with the held-out grids side by side."""
    from transferlab.tasks.translate.report import write_comparison

    opts = TranslateOptions(**{k: v for k, v in options.items() if v is not None})
    _check(opts)
    if not entries:
        raise UsageError("--compare needs encoders", "e.g. --compare scratch,imagenet,ae:runs/ae")
    root = Path(out) if out else default_run_dir("translate", f"{opts.task}-compare")
    results = []
    for label, spec in encoder_specs(entries, opts.backbone).items():
        run_options = {**asdict(opts), "backbone": spec}
        results.append(train(data, out=root / _folder(label), name=label, **run_options))
    write_comparison(root, results, opts)
    return results


def _folder(label: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.]+", "-", label).strip("-") or "run"


def load_translator(run_dir: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The trained network of a translate run and its spec; a run of another kind is refused."""
    from safetensors.torch import load_file

    from transferlab.runs import read_run
    from transferlab.tasks.translate.networks import GENERATORS
    from transferlab.tasks.translate.recipe import MODEL_KIND

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


def evaluate(run_dir: str | Path, data: Any, *, device: str = "auto") -> dict[str, Any]:
    """PSNR, SSIM and the Lite0 perceptual distance of a run on DATA (every image is held out):
    photos for the self-supervised tasks, A/B pairs for ``paired``. Written to the run's evaluations."""
    from transferlab.devices import resolve_device
    from transferlab.engine.performance import for_inference
    from transferlab.io import write_json
    from transferlab.tasks.translate.data import load_pairs
    from transferlab.tasks.translate.recipe import score, translate_batches

    dev = resolve_device(device)
    net, spec = load_translator(run_dir, dev)
    opts = TranslateOptions(**spec["options"])
    performance = for_inference(dev, TranslateOptions.cpu_defaults)  # as the run trained
    pairs = load_pairs(data, opts.task, opts.img_size, opts.seed, val_fraction=1.0)  # all of DATA held out
    x, y = pairs.held_out(opts.task, opts)
    output = translate_batches(net, x, performance)
    scores = {**score(output, y, opts.task), "images": len(y), "task": opts.task, "data": pairs.description}
    folder = Path(run_dir) / "evaluations" / _folder(Path(str(data)).name)
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
    from transferlab.data.images import collect_images
    from transferlab.devices import resolve_device
    from transferlab.tasks.translate.tiles import translate_file

    if tile < 64 or tile % 32:
        raise UsageError(f"--tile {tile} is not a multiple of 32 of at least 64", "e.g. --tile 256")
    net, spec = load_translator(run_dir, resolve_device(device))
    files = collect_images(inputs)
    if not files:
        raise UsageError("no images among the inputs", "give image files or folders of them")
    out = Path(out)
    from transferlab.progress import track

    return [translate_file(net, spec, path, out, tile, batch_size) for path in track(files, "translating", len(files))]
