"""A self-contained HTML report: headings, text, tables and PNGs embedded as data URIs."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transferlab.io import atomic_path

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:.5em 0}
.note{background:#f8f8e8;border-left:4px solid #cc4;padding:.5em 1em}.meta{color:#666;font-size:.85em}
"""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return html.escape(str(value))


class HtmlReport:
    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = [
            f"<h1>{html.escape(title)}</h1>",
            f"<p class='meta'>{time.strftime('%Y-%m-%d %H:%M')}</p>",
        ]

    def heading(self, text: str) -> HtmlReport:
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def text(self, text: str, note: bool = False) -> HtmlReport:
        self.parts.append(f"<p class='note'>{html.escape(text)}</p>" if note else f"<p>{html.escape(text)}</p>")
        return self

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> HtmlReport:
        if not rows:
            return self
        columns = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in columns) + "</tr>" for row in rows)
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def facts(self, facts: dict[str, Any]) -> HtmlReport:
        """A two-column table of what a run was: one row per fact."""
        return self.table([{"": k, "value": v} for k, v in facts.items()], ["", "value"])

    def image(self, path: Path, alt: str = "") -> HtmlReport:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        self.parts.append(f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>")
        return self

    def run_sections(self, folder: Path) -> list[str]:
        """What the engine leaves in a run folder for its report, whatever the task: the LR
        finder's curve when ``--lr auto`` chose the rate."""
        finding = folder / "lr_find.json"
        if not (finding.is_file() and (folder / "lr_find.png").is_file()):
            return []
        import json

        found = json.loads(finding.read_text())
        section = HtmlReport.__new__(HtmlReport)  # a section, not a page: no title or date
        section.parts = []
        section.heading("Learning rate (--lr auto)")
        section.text(f"The LR finder swept {len(found['losses'])} steps of this run's own training from "
                     f"{found['rates'][0]:.0e} to {found['rates'][-1]:.1e} and chose --lr {found['suggestion']:.3g} "
                     f"by the {found['rule']} rule.")  # fmt: skip
        return section.image(folder / "lr_find.png", "learning-rate finder").parts

    def save(self, path: Path) -> Path:
        parts = self.parts + self.run_sections(Path(path).parent)
        page = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
        )
        with atomic_path(path) as tmp:
            tmp.write_text(page, encoding="utf-8")
        return Path(path)
