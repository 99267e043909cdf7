"""``transferlab serve``: trained runs behind an HTTP API and a web page."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.cli.options import with_options
from transferlab.options.serve import ServeOptions


@with_options(ServeOptions)
def serve(
    runs: list[Path] = typer.Argument(None, metavar="RUN...", help="Run folders (classify, stylize train, gan train)."),
    models_dir: Path = typer.Option(None, "--models-dir", help="Serve every servable run below this folder."),
    token: str = typer.Option(
        None, "--token", envvar="TRANSFERLAB_TOKEN", help="Require 'Authorization: Bearer TOKEN' (or set the env var)."
    ),
    options: dict | None = None,
) -> None:
    """Serve trained runs over HTTP: a JSON/PNG API, KServe v2 routes, /metrics and a web page at /."""
    from transferlab.serve.server import serve as run_server

    run_server(list(runs or []), models_dir, token=token, **(options or {}))
