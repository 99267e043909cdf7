"""A translate run's outputs: the run itself, input | output | target grids of fixed held-out
images, curves, ``report.html``; and the ``--compare`` table."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from transferlab.engine.performance import performance_of, unwrap
from transferlab.engine.session import metric_columns
from transferlab.io import save_grid
from transferlab.reports import plots
from transferlab.reports.comparison import Comparison
from transferlab.reports.comparison import write_comparison as write_table
from transferlab.reports.html import HtmlReport
from transferlab.runs import save_run

DISTANCE_NAME = "Lite0 perceptual distance"  # never "LPIPS": no learned weights here


@dataclass
class TranslateResult:
    name: str
    run_dir: Path
    report: Path
    scores: dict[str, float]  # held-out psnr, ssim, lite0_distance at the end
    seconds: float
    weights_source: str = ""
    evaluations: list[dict[str, float]] = field(default_factory=list)


def held_out_grid(translator: Any, path: Path, count: int = 8) -> Path:
    """Rows of (input, output, target) for the first ``count`` held-out images."""

    x, y = translator.pairs.held_out(translator.opts.task, translator.opts, count)
    out = translator.translate(x)
    rows = [image for triple in zip(x[:, :3], out, y) for image in triple]
    return save_grid(torch.stack(rows), path, nrow=3, padding=2, pad_value=1.0)


def evaluations(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    """The held-out scores at each evaluation, from a run's metrics.csv rows (``read_metrics``)."""
    keys = ("step", "psnr", "ssim", "lite0_distance")
    return [{k: row[k] for k in keys} for row in rows if not math.isnan(row.get("psnr", math.nan))]


def write_run(translator: Any, run_dir: Path, label: str, seconds: float, rows: list[dict[str, float]]) -> Path:
    """The run, its pictures and report.html; ``rows``: its metrics.csv (``read_metrics``)."""

    opts, final = translator.opts, translator.final
    save_run(
        run_dir, task="translate", state_dict=unwrap(translator.generator).state_dict(),
        model=translator.model_spec(), class_names=[],
        preprocessing={"input": "RGB in [0, 1]", "img_size": opts.img_size},
        metrics={**final, "seconds": round(seconds, 1)},
        extra={"data": translator.pairs.description, "encoder_weights": translator.weights_source},
        performance=performance_of(translator.fabric),
    )  # fmt: skip
    grid = held_out_grid(translator, run_dir / "held_out.png")
    losses = metric_columns(rows, "loss", "l1", "perceptual", "adversarial", "d_loss")
    history = {k: v for k, v in losses.items() if v and any(x == x for x in v)}  # skip all-NaN terms
    plots.loss_curves(history, run_dir / "losses.png", log=False)
    scored = evaluations(rows)
    plots.metric_curves({"PSNR (dB)": ([e["step"] for e in scored], [e["psnr"] for e in scored])},
                        run_dir / "psnr.png", "held-out PSNR (dB)", "step")  # fmt: skip
    facts = {
        "task": opts.task + (f" x{opts.scale}" if opts.task == "superres" else ""),
        "data": translator.pairs.description,
        "encoder": f"{opts.backbone} ({translator.weights_source})",
        "discriminator": "none" if not opts.adversarial else opts.d_init or opts.d_features.replace("none", "PatchGAN"),
        "steps": f"{translator.step} x batch {opts.batch_size} at {opts.img_size} px",
        "seconds": round(seconds, 1),
        "held-out PSNR (dB)": round(final["psnr"], 2),
        "held-out SSIM": round(final["ssim"], 4),
        DISTANCE_NAME: round(final["lite0_distance"], 4),
    }
    if "fid_lite0" in final:
        facts["FID on Lite0 features (held-out set)"] = round(final["fid_lite0"], 2)
    report = HtmlReport(f"translate ({opts.task}): {label}")
    report.facts(facts)
    report.heading("Held-out images: input | output | target").image(grid, "held-out grid")
    report.heading("Losses").image(run_dir / "losses.png", "losses")
    report.heading("Held-out PSNR").image(run_dir / "psnr.png", "psnr")
    return report.save(run_dir / "report.html")


def comparison_rows(results: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "encoder": r.name,
            "weights": r.weights_source,
            "PSNR dB": round(r.scores["psnr"], 2),
            "SSIM": round(r.scores["ssim"], 4),
            DISTANCE_NAME: round(r.scores["lite0_distance"], 4),
            **({"FID (Lite0)": round(r.scores["fid_lite0"], 2)} if "fid_lite0" in r.scores else {}),
            "seconds": round(r.seconds, 1),
        }
        for r in results
    ]


def write_comparison(root: Path, results: list[Any], opts: Any) -> Path:

    note = (
        f"Same task, data, seed and budget ({opts.steps} steps x batch {opts.batch_size} at {opts.img_size} px) "
        f"for every encoder; scores on the same held-out images. {DISTANCE_NAME}: lower is closer."
    )
    table = Comparison("translate", f"translate ({opts.task}): encoders compared", comparison_rows(results),
                       {"options": asdict(opts)}, note=note)  # fmt: skip

    def pictures(report: HtmlReport) -> None:
        for result in results:
            report.heading(f"{result.name}: input | output | target").image(
                result.run_dir / "held_out.png", result.name
            )

    return write_table(root, table, pictures)
