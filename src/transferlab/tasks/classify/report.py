"""The HTML report of a classify run, and of a comparison of strategies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferlab.reports import plots
from transferlab.reports.html import HtmlReport


def write_run_report(
    run_dir: Path, title: str, facts: dict[str, Any], history: list[dict], metrics: dict[str, Any],
    tables: dict[str, list[dict[str, Any]]] | None = None,
) -> Path:  # fmt: skip
    """The run's report.html; ``tables`` (heading -> rows) follow the validation scores."""
    plots.learning_curves({facts.get("strategy", "run"): history}, run_dir / "curves.png")
    report = HtmlReport(title).facts(facts)
    report.heading("Learning curves").image(run_dir / "curves.png", "learning curves")
    report.heading("Validation").table(
        [
            {
                "accuracy": metrics["accuracy"],
                "top-5 accuracy": metrics["top5_accuracy"],
                "macro F1": metrics["macro_f1"],
                "images": metrics["images"],
            }
        ]
    )
    for heading, rows in (tables or {}).items():
        report.heading(heading).table(rows)
    report.image(run_dir / "confusion.png", "confusion matrix")
    if metrics["most_confused"]:
        report.heading("Most confused pairs").table(metrics["most_confused"])
    report.heading("Per class").table(metrics["per_class"])
    report.heading("Highest-loss validation images").image(run_dir / "hardest.png", "hardest images")
    if (run_dir / "hardest_maps.png").is_file():
        report.text("The first six again, with the Grad-CAM map of the class the model predicted (`transferlab "
                    "explain RUN IMAGES` draws it for any image).")  # fmt: skip
        report.image(run_dir / "hardest_maps.png", "hardest images with their maps")
    return report.save(run_dir / "report.html")


def comparison_pictures(report: HtmlReport, out_dir: Path, histories: dict[str, list[dict]], best_dir: Path) -> None:
    """A comparison's curves, and the confusion matrix and hardest images of its best run."""
    plots.learning_curves(histories, out_dir / "curves.png", "per strategy (solid: validation, dashed: train)")
    report.heading("Learning curves").image(out_dir / "curves.png", "learning curves")
    report.heading(f"Confusion matrix of the best ({best_dir.name})").image(
        best_dir / "confusion.png", "confusion matrix"
    )
    report.heading("Its highest-loss validation images").image(best_dir / "hardest.png", "hardest images")
    if (best_dir / "hardest_maps.png").is_file():
        report.image(best_dir / "hardest_maps.png", "hardest images with their maps")
