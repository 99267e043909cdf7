"""What a GAN run leaves for people to look at: sample grids, the fixed-noise progression, loss
and FID curves, CSV metrics and ``report.html``; and the side-by-side table of ``--compare``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transferlab.io import write_csv
from transferlab.reports import plots
from transferlab.reports.html import HtmlReport


@dataclass
class GanResult:
    name: str
    run_dir: Path
    report: Path
    steps: int
    seconds: float
    best: dict[str, float] = field(default_factory=dict)  # step, fid, kid at the best FID
    evaluations: list[dict[str, float]] = field(default_factory=list)
    extractor: dict[str, Any] = field(default_factory=dict)  # name and sample counts behind the scores
    loop_seconds: float = 0.0  # the training loop alone: no data loading, network building or report


def _progression(trainer: Any, path: Path, rows: int = 8) -> Path | None:
    """One row per snapshot (evenly chosen), the same eight latents in each: training, visibly."""
    import torch
    from torchvision.io import ImageReadMode, decode_image

    from transferlab.io import save_grid

    steps = trainer.snapshots
    if not steps:
        return None
    chosen = [steps[round(i * (len(steps) - 1) / max(rows - 1, 1))] for i in range(min(rows, len(steps)))]
    chosen = sorted(set(chosen))
    size = trainer.opts.img_size
    strips = []
    for step in chosen:
        grid = decode_image(str(trainer.run_dir / "samples" / f"step-{step:07d}.png"), mode=ImageReadMode.RGB)
        strips.append(grid[:, 2 : 2 + size, :])  # make_grid pads by 2: the first row of images
    save_grid(torch.cat(strips, dim=1).float() / 255, path)
    return path


def scores_note(extractor: dict[str, Any]) -> str:
    return (
        f"FID/KID on {extractor['extractor']} features, {extractor['real']} real and {extractor['fake']} generated "
        "images: comparable only with scores of the same extractor and counts."
    )


def write_report(trainer: Any, name: str, seconds: float) -> Path:
    run_dir, opts = trainer.run_dir, trainer.opts
    from transferlab.engine.session import metric_columns, read_metrics

    history = metric_columns(read_metrics(run_dir), "d_loss", "g_loss")
    write_csv(run_dir / "evaluations.csv", trainer.evaluations)
    final = run_dir / "samples" / f"step-{trainer.step:07d}.png"
    progression = _progression(trainer, run_dir / "progression.png")
    plots.loss_curves({"D": history["d_loss"], "G": history["g_loss"]}, run_dir / "losses.png", log=False)
    transfer = "scratch"
    if opts.init:
        transfer = f"fine-tuned from {opts.init}" + (
            f", lowest {opts.freeze_d} D blocks frozen" if opts.freeze_d else ""
        )
    facts = {
        "data": f"{trainer.real.description}: {len(trainer.real)} images",
        "architecture": f"{opts.arch}, {opts.img_size} px, {trainer.real.channels} channel(s)"
        + (f", {trainer.num_classes} classes" if trainer.num_classes else ""),
        "discriminator": "frozen ImageNet Lite0 features + heads" if opts.d_features == "lite0" else opts.arch,
        "transfer": transfer,
        "augmentation": opts.augment + (", x-flip" if opts.xflip else ""),
        "steps": f"{trainer.step} x batch {opts.batch_size}",
        "seconds": round(seconds, 1),
    }
    report = HtmlReport(f"GAN: {name} on {trainer.real.description}")
    if trainer.best:
        facts["best FID"] = f"{trainer.best['fid']:.2f} at step {trainer.best['step']}"
        facts["its KID"] = f"{trainer.best['kid'] * 1000:.2f}e-3"
    last = trainer.evaluations[-1] if trainer.evaluations else {}
    if "class_consistency" in last:
        facts["class consistency (classifier run)"] = (
            f"{last['class_consistency']:.1%} (coverage {last['class_coverage']:.0%})"
        )
    if last.get("diversity", float("nan")) == last.get("diversity"):
        within = " within each class" if trainer.num_classes else ""
        facts[f"diversity (mean pairwise feature distance{within})"] = (
            f"{last['diversity']:.3g} generated vs {last['real_diversity']:.3g} real"
        )
    report.facts(facts)
    if trainer.extractor:
        report.text(scores_note(trainer.extractor), note=True)
    if last.get("diversity", 1.0) < 0.5 * last.get("real_diversity", 0.0):
        report.text(
            f"Warning: the samples are far less diverse than the real images ({last['diversity']:.3g} vs "
            f"{last['real_diversity']:.3g}): the generator may have collapsed to a few images.",
            note=True,
        )
    report.heading("Samples at the end (fixed noise)").image(final, "samples")
    if progression:
        report.heading("Progression (rows: training time, same latents)").image(progression, "progression")
    report.heading("Losses").image(run_dir / "losses.png", "losses")
    if trainer.evaluations:
        steps = [e["step"] for e in trainer.evaluations]
        plots.metric_curves({"FID": (steps, [e["fid"] for e in trainer.evaluations])}, run_dir / "fid.png", "FID")
        report.heading("FID").image(run_dir / "fid.png", "FID")
    return report.save(run_dir / "report.html")


def write_comparison(root: Path, results: list[Any]) -> Path:
    from transferlab.reports.comparison import Comparison
    from transferlab.reports.comparison import write_comparison as write_table

    rows = [
        {
            "run": r.name,
            "best FID": round(r.best["fid"], 2) if r.best else None,
            "KID x1e3": round(r.best["kid"] * 1000, 2) if r.best else None,
            "best step": r.best.get("step") if r.best else None,
            "seconds": round(r.seconds, 1),
        }
        for r in results
    ]
    extractor = results[0].extractor
    note = scores_note(extractor) if extractor else ""
    table = Comparison("gan", "GAN: transfer against scratch (same data, same steps)", rows, {"scores": extractor},
                       note=note)  # fmt: skip

    def pictures(report: HtmlReport) -> None:
        for r in results:
            report.heading(r.name).image(r.run_dir / "samples" / f"step-{r.steps:07d}.png", f"{r.name} samples")
        curves = {r.name: ([e["step"] for e in r.evaluations], [e["fid"] for e in r.evaluations]) for r in results}
        if all(c[0] for c in curves.values()):
            report.heading("FID during training").image(plots.metric_curves(curves, root / "fid.png", "FID"), "FID")

    return write_table(root, table, pictures)
