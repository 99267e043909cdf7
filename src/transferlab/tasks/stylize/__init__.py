"""``stylize``: neural style transfer with pretrained features, by optimisation or feed-forward.

from transferlab import stylize
result = stylize.stylize("photo.jpg", ["starry_night.jpg"], out="styled/", size=512)   # Gatys
run = stylize.train_style("starry_night.jpg", "photos/", steps=2000).run_dir          # Johnson
stylize.apply_style(run, ["holiday/"], out="styled/")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from transferlab.data.images import open_image_or_fail
from transferlab.devices import resolve_device
from transferlab.errors import UsageError
from transferlab.io import atomic_path, write_json
from transferlab.reports import plots
from transferlab.reports.html import HtmlReport
from transferlab.tasks.stylize import color
from transferlab.tasks.stylize.features import NETWORKS, feature_network
from transferlab.tasks.stylize.images import load_image_tensor, to_pil
from transferlab.tasks.stylize.optimize import StylizeOptions, Trace, relative_drop, run

__all__ = ["NETWORKS", "StylizeOptions", "StylizeResult", "apply_style", "load_run", "stylize", "train", "train_style"]


@dataclass
class StylizeResult:
    image: Path
    panel: Path
    report: Path
    trace: Trace
    loss_drop: float  # share of the final level's loss removed by the optimisation


def stylize(
    content: str | Path, styles: list[str | Path], *, out: str | Path = "stylized", device: str = "auto", **options: Any
) -> StylizeResult:
    """Stylise ``content`` with one or more ``styles`` (mixed by ``style_mix``); write the
    image, a content | style | result panel, loss curves and ``report.html`` into ``out``."""

    opts = StylizeOptions(**options)
    opts.check()
    if not styles:
        raise UsageError("no style image was given", "pass at least one --style IMAGE")
    net = feature_network(opts.network, opts.weights)
    dev = resolve_device(device)
    content_t = load_image_tensor(content, "content", net.min_size, opts.size).to(dev)
    style_ts = [load_image_tensor(s, "style", net.min_size, opts.size).to(dev) for s in styles]
    if opts.preserve_color:
        grey_styles = [color.match_luminance(s, content_t) for s in style_ts]
        grey, trace = run(net, color.luminance_as_rgb(content_t), grey_styles, opts)
        content_at_size = torch.nn.functional.interpolate(
            content_t, size=grey.shape[-2:], mode="bicubic", antialias=True
        )
        result = color.recombine(grey, content_at_size.clamp(0, 1))
    else:
        result, trace = run(net, content_t, style_ts, opts)
    return _write_outputs(Path(out), content, styles, result, trace, opts)


def _write_outputs(
    out: Path, content: str | Path, styles: list[str | Path], result: torch.Tensor, trace: Trace, opts: StylizeOptions
) -> StylizeResult:

    out.mkdir(parents=True, exist_ok=True)
    image_path = out / "stylized.png"
    with atomic_path(image_path) as tmp:
        to_pil(result).save(tmp, format="PNG")
    pictures = [open_image_or_fail(content), *[open_image_or_fail(s) for s in styles], Image.open(image_path)]
    captions = ["content", *[f"style {Path(s).name}" for s in styles], "result"]
    panel = plots.image_gallery(pictures, captions, out / "panel.png", columns=len(pictures))
    plots.loss_curves(
        {"total": trace.total, "style": trace.style, "content": trace.content}, out / "losses.png", "loss evaluation"
    )
    drop = relative_drop(trace)
    summary = {
        "content": str(content),
        "styles": [str(s) for s in styles],
        "options": asdict(opts),
        "seconds": round(trace.seconds, 2),
        "final_loss": trace.total[-1],
        "loss_drop": drop,
    }
    write_json(out / "stylize.json", summary)
    report = HtmlReport(f"stylize: {Path(str(content)).name}")
    report.table(
        [
            {"": k, "value": v}
            for k, v in {
                "network": opts.network,
                "size": opts.size,
                "optimizer": opts.optimizer,
                "evaluations": len(trace.total),
                "seconds": f"{trace.seconds:.1f}",
                "preserve colour": opts.preserve_color,
            }.items()
        ],
        ["", "value"],
    )
    report.heading("Result").image(panel, "content, style, result").heading("Losses").image(
        out / "losses.png", "losses"
    )
    return StylizeResult(image_path, panel, report.save(out / "report.html"), trace, drop)


def __getattr__(name: str) -> Any:
    # The feed-forward half loads lazily: the optimisation path does not need it.
    # ``train`` (the one training entry of every task) and ``load_run`` (the registry's loader of
    # this task's runs) are the feed-forward half's train_style and load_style_model.
    aliases = {"train": "train_style", "load_run": "load_style_model"}
    if name in ("train_style", "apply_style", "StyleTrainOptions", "load_style_model", *aliases):
        from transferlab.tasks.stylize import feedforward

        return getattr(feedforward, aliases.get(name, name))
    raise AttributeError(name)
