"""``transferlab tasks``: what the task registry holds, for people and for tools."""

from __future__ import annotations

import json

import typer

from transferlab.cli.console import out


def tasks(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List the tasks: their commands, run kinds, serve endpoints and export formats."""
    from rich.table import Table

    from transferlab.registry import TASKS

    rows = [task.describe() for task in TASKS.values()]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Tasks (Python: transferlab.TASK.train ...; commands: transferlab COMMAND --help)")
    table.add_column("task", no_wrap=True)
    table.add_column("what it does, its commands, runs, serve endpoints and export formats")
    for row in rows:
        facts = [f"commands: {', '.join(row['commands'])}"]
        facts += [f"{name}: {', '.join(row[key])}" for name, key in (("runs", "run_kinds"),
                  ("serve", "serve_endpoints"), ("export", "export_formats")) if row[key]]  # fmt: skip
        if row["explained"]:
            facts.append(f"explain: {', '.join(row['explained'])} runs")
        if row["corruptions_metric"]:
            facts.append(f"evaluate --corruptions: {row['corruptions_metric']}")
        if row["tuned_metric"]:
            facts.append(f"lr-find, tune (objective: held-out {row['tuned_metric']})")
        table.add_row(row["name"], "\n".join([row["summary"], *facts]))
    out.print(table)
