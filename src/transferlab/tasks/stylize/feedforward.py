"""Feed-forward style transfer (Johnson et al. 2016): train a network for one style, then apply it.

Training: random square crops of the content images pass through the
:class:`~transferlab.tasks.stylize.transformer.StyleTransformer`; the same
:class:`~transferlab.tasks.stylize.losses.PerceptualLoss` as the optimisation (frozen feature
network, relative Gram and content errors) compares each output with the style and with its own
input. Adam at a constant rate. Batches are drawn from a generator seeded by (seed, step), so a
resumed run sees exactly the batches the uninterrupted one would have.

Applying: one forward pass per image (batched when sizes agree), in the memory format and precision
stylize train chooses for the device (engine.performance).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from transferlab.data import load_images
from transferlab.data.images import collect_images
from transferlab.data.loaders import fit_square
from transferlab.devices import resolve_device
from transferlab.engine.batches import BatchDraw
from transferlab.engine.checkpoint import capture_state, restore_state
from transferlab.engine.fabric import setup_trained
from transferlab.engine.performance import for_inference, performance_of, unwrap
from transferlab.engine.run import run
from transferlab.engine.session import TrainingSession, fingerprint, metric_columns, read_metrics
from transferlab.engine.steps import StepRecipe
from transferlab.errors import RunError, UsageError
from transferlab.io import atomic_path
from transferlab.options.stylize import StyleTrainOptions
from transferlab.progress import StepProgress
from transferlab.reports import plots
from transferlab.reports.html import HtmlReport
from transferlab.runs import TrainingResult, default_run_dir, read_run, save_run
from transferlab.tasks.stylize.features import feature_network
from transferlab.tasks.stylize.images import load_image_tensor, to_pil
from transferlab.tasks.stylize.losses import PerceptualLoss, mixed_grams, smooth
from transferlab.tasks.stylize.optimize import resize_long_side
from transferlab.tasks.stylize.transformer import StyleTransformer

MODEL_KIND = "style-transformer"
TASK = "stylize-train"
#: Content images are kept decoded in memory up to this many bytes, else decoded per batch.
RESIDENT_BYTES = 2 * 1024**3
#: Smallest image side the network accepts (its 9x9 reflection padding needs more than 4 px).
MIN_SIDE = 16
#: Larger inputs are scaled down to this longer side (with a warning) unless --size says otherwise.
MAX_SIDE = 4096


StyleTrainResult = TrainingResult


# --------------------------------------------------------------------------- content batches


class ContentBatches:
    """Random crops (with flips) of the content images, as float batches in [0, 1]."""

    def __init__(self, data: str | Path, size: int) -> None:

        self.images, _, self.description = load_images(data)
        self.size = size
        self.store = round(size * 1.15)  # room for random crops
        self.pixels = None
        if len(self.images) * 3 * self.store**2 <= RESIDENT_BYTES:
            from transferlab.data.loaders import decode_all

            self.pixels = decode_all(self.images, self.store)

    def __len__(self) -> int:
        return len(self.images)

    def fingerprint(self) -> str:
        content = self.pixels if self.pixels is not None else list(getattr(self.images, "paths", []))
        return fingerprint(content, self.description, len(self))

    def stored(self, index: int) -> torch.Tensor:
        if self.pixels is not None:
            return self.pixels[index]

        return torch.from_numpy(fit_square(self.images.image(index), self.store, "bicubic")).permute(2, 0, 1)

    def batch(self, draw: BatchDraw) -> torch.Tensor:
        """This process's share of the step's crops (only its own images are decoded)."""
        indices = draw.indices(len(self)).tolist()
        offsets = draw.integers(0, self.store - self.size + 1, 2).tolist()
        flips = draw.flips().tolist()
        crops = []
        for i, (top, left), flip in zip(indices, offsets, flips):
            crop = self.stored(i)[:, top : top + self.size, left : left + self.size]
            crops.append(crop.flip(-1) if flip else crop)
        return torch.stack(crops).float().div_(255)


# --------------------------------------------------------------------------- training


class StyleRecipe(StepRecipe[StyleTrainOptions, StyleTrainResult]):
    """A style network for one style image, trained on crops of the content images (DATA is the
    pair (style image, content images))."""

    task, options, metrics = TASK, StyleTrainOptions, ("step", "total", "style", "content")
    title_format = "training style network"

    def __init__(self, data: tuple[Path, Any], opts: StyleTrainOptions, fabric: Any, run_dir: Path) -> None:

        self.style = Path(data[0])
        self.opts, self.run_dir, self.fabric = opts, run_dir, fabric
        self.content = ContentBatches(data[1], opts.train_size)
        self.performance = performance_of(fabric)
        net = feature_network(opts.network, opts.weights)
        mode = opts.smoothing or net.smoothing
        style_image = resize_long_side(load_image_tensor(self.style, "style", net.min_size), opts.style_size)
        self.style_image = style_image
        self.style_pixels = load_image_tensor(self.style, "style", MIN_SIDE)

        def layers(x: torch.Tensor) -> list[torch.Tensor]:
            return [smooth(f.float(), mode) for f in net.layers(x)]

        grams = mixed_grams(layers, [style_image.to(fabric.device)], [1.0])
        weights = (opts.style_weight, opts.content_weight, opts.tv_weight)
        self.loss = PerceptualLoss(layers, net.content_layer, grams, weights, net.style_layers)
        model = StyleTransformer(opts.width, opts.blocks)
        optimizer = torch.optim.Adam(model.parameters(), lr=opts.lr)
        self.model, self.optimizer = setup_trained(fabric, model, optimizer)
        self.step = 0

    @classmethod
    def resume_command(cls, data: tuple[Path, Any]) -> str:
        return f"transferlab stylize train {data[0]} --content {data[1]}"

    def fingerprint(self) -> str:
        return fingerprint(self.content.fingerprint(), self.style_pixels)

    def finish(self, seconds: float, write: bool, name: str = "") -> StyleTrainResult:
        if not write:  # stopped early on purpose (tests), or not rank 0; the checkpoint holds the state
            return StyleTrainResult(self.run_dir, self.run_dir / "report.html", self.losses()["total"], seconds)
        return _write_run(self, self.style, self.content.description, seconds)

    def state(self) -> dict[str, Any]:
        parts = {"model": self.model, "optimizer": self.optimizer}
        return capture_state(self.opts, **parts, step=self.step)

    def restore(self, state: dict[str, Any]) -> None:
        restore_state(state, model=self.model, optimizer=self.optimizer)
        self.step = int(state["step"])

    def losses(self) -> dict[str, list[float]]:
        """The loss curves so far, from the run's metrics.csv (rank 0's record)."""

        return metric_columns(read_metrics(self.run_dir), "total", "style", "content")

    def progress(self, row: dict[str, float]) -> str:
        return f"loss {row['total']:.4f}"

    def train_step(self, session: TrainingSession) -> dict[str, float]:
        draw = BatchDraw.for_step(self.opts.seed, self.step, self.opts.batch_size, self.fabric)
        x = self.performance.inputs(self.content.batch(draw).to(self.fabric.device))
        with self.fabric.autocast():  # the frozen loss network in the run's precision too
            target = self.loss.content_target(x)
            y = self.model(x)
            total, style, content = self.loss(y.float(), target.float())
        session.check_finite(total.detach(), f"step {self.step + 1}", "lower --lr or --style-weight")
        self.optimizer.zero_grad(set_to_none=True)
        self.fabric.backward(total)
        self.optimizer.step()
        self.step += 1
        return {"total": float(total.detach()), "style": float(style.detach()), "content": float(content.detach())}

    def samples(self, count: int = 4) -> tuple[torch.Tensor, torch.Tensor]:

        x = torch.stack([self.content.stored(i) for i in range(min(count, len(self.content)))]).float() / 255
        model = unwrap(self.model)
        with self.performance.inference(model):
            y = model(self.performance.inputs(x.to(self.fabric.device))).float().cpu()
        return x, y


def train_style(
    style: str | Path,
    content: str | Path,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    **options: Any,
) -> StyleTrainResult:
    """Train a style network for ``style`` on the images of ``content`` (a folder, archive or
    built-in dataset); write the run (``model.safetensors`` + ``run.json``), loss curves, sample
    panels and ``report.html``. ``resume=RUN`` continues a stopped run with its own options."""

    out = out if out or resume else default_style_dir(style)
    return run(StyleRecipe, (Path(style), content), out=out, resume=resume, stop_after=stop_after, **options)


def default_style_dir(style: str | Path) -> Path:

    return default_run_dir("stylize", Path(style).stem)


def _write_run(trainer: StyleRecipe, style: Path, content: str, seconds: float) -> StyleTrainResult:

    run_dir, opts = trainer.run_dir, trainer.opts
    model = unwrap(trainer.model)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    history = trainer.losses()
    final = float(np.mean(history["total"][-50:]))
    save_run(
        run_dir,
        task="stylize",
        state_dict=weights,
        model={"kind": MODEL_KIND, **model.config()},
        class_names=[],
        preprocessing={"input": "RGB in [0, 1]"},
        metrics={"final_loss": final, "seconds": round(seconds, 1), "steps": trainer.step},
        extra={"style": str(style), "content": content, "options": asdict(opts)},
        performance=performance_of(trainer.fabric),
    )
    to_pil(trainer.style_image).save(run_dir / "style.png")
    x, y = trainer.samples()
    pictures = [to_pil(t[None]) for pair in zip(x, y) for t in pair]
    captions = [c for i in range(len(x)) for c in (f"content {i + 1}", f"stylised {i + 1}")]
    panel = plots.image_gallery(pictures, captions, run_dir / "samples.png", columns=min(len(pictures), 4))
    plots.loss_curves(history, run_dir / "losses.png", "step")
    report = HtmlReport(f"style network: {style.name}")
    facts = {
        "style": style.name,
        "content": content,
        "feature network": opts.network,
        "steps": trainer.step,
        "batch": f"{opts.batch_size} x {opts.train_size} px",
        "seconds": round(seconds, 1),
        "final loss (mean of last 50)": round(final, 4),
    }
    report.facts(facts)
    report.heading("Style").image(run_dir / "style.png", "style")
    report.heading("Training images, stylised").image(panel, "content and stylised")
    report.heading("Losses").image(run_dir / "losses.png", "losses")
    return StyleTrainResult(run_dir, report.save(run_dir / "report.html"), history["total"], seconds)


# --------------------------------------------------------------------------- applying


def load_style_model(run_dir: str | Path) -> StyleTransformer:
    """The trained network of a style run; a run of another kind is refused."""
    from safetensors.torch import load_file

    run = read_run(run_dir, model_kind=MODEL_KIND)
    try:
        model = StyleTransformer(int(run.model["width"]), int(run.model["blocks"]))
        model.load_state_dict(load_file(str(run.weights_path)))
    except (KeyError, ValueError, RuntimeError) as exc:
        raise RunError(
            f"the weights of {run_dir} do not fit its style network ({str(exc).splitlines()[0]})",
            "retrain it with `transferlab stylize train`",
        ) from None
    return model.eval()


def _prepared(path: Path, size: int | None) -> torch.Tensor:

    image = load_image_tensor(path, "content", MIN_SIDE)
    longest = max(image.shape[-2:])
    if size is None and longest > MAX_SIDE:
        warnings.warn(f"{path} ({longest} px) is scaled down to {MAX_SIDE} px on its longer side", stacklevel=3)
        size = MAX_SIDE
    return resize_long_side(image, size) if size else image


def _batches(files: list[Path], size: int | None, batch_size: int) -> Iterator[tuple[list[Path], torch.Tensor]]:
    """Consecutive images of one size, up to ``batch_size`` at a time."""
    group: list[tuple[Path, torch.Tensor]] = []
    for path in files:
        image = _prepared(path, size)
        if group and (len(group) == batch_size or group[0][1].shape != image.shape):
            yield [p for p, _ in group], torch.cat([t for _, t in group])
            group = []
        group.append((path, image))
    if group:
        yield [p for p, _ in group], torch.cat([t for _, t in group])


def apply_style(
    run_dir: str | Path,
    inputs: list[str | Path],
    *,
    out: str | Path = "stylized",
    size: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
) -> list[Path]:
    """Stylise images or folders with a trained style network; returns the written files."""

    if size is not None and not MIN_SIDE <= size <= MAX_SIDE:
        raise UsageError(f"--size {size} is outside {MIN_SIDE}..{MAX_SIDE}", "e.g. --size 1024")
    model = load_style_model(run_dir)
    files = collect_images(inputs)
    dev = resolve_device(device)
    batch_size = batch_size or (8 if dev.type == "cuda" else 1)  # batching only pays on a GPU
    performance = for_inference(dev, StyleTrainOptions.cpu_defaults)  # as stylize train runs on this device
    model = model.to(dev)
    out, written = Path(out), []
    out.mkdir(parents=True, exist_ok=True)
    with performance.inference(model), StepProgress(len(files), 0, "stylizing") as progress:
        for paths, batch in _batches(files, size, batch_size):
            result = model(performance.inputs(batch.to(dev))).float().cpu()
            for path, image in zip(paths, result):
                target = out / f"{path.stem}_stylized.png"
                with atomic_path(target) as tmp:
                    to_pil(image[None]).save(tmp, format="PNG")
                written.append(target)
            progress.advance(steps=len(paths))
    return written
