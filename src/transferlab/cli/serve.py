"""``transferlab serve``: trained runs behind an HTTP API and a web page."""

from __future__ import annotations

from pathlib import Path

import typer

from transferlab.serve.server import ServeOptions

_D = ServeOptions()


def serve(
    runs: list[Path] = typer.Argument(None, metavar="RUN...", help="Run folders (classify, stylize train, gan train)."),
    models_dir: Path = typer.Option(None, "--models-dir", help="Serve every servable run below this folder."),
    host: str = typer.Option(_D.host, "--host", help="127.0.0.1 (this machine), 0.0.0.0 or :: (every interface)."),
    port: int = typer.Option(_D.port, "--port", "-p"),
    workers: int = typer.Option(_D.workers, "--workers", help="Model worker processes per model and device."),
    max_batch_size: int = typer.Option(
        _D.max_batch_size, "--max-batch-size", help="Requests a classifier answers in one call (1 = no batching)."
    ),
    batch_timeout_ms: float = typer.Option(
        _D.batch_timeout_ms, "--batch-timeout-ms", help="How long a worker waits to fill a batch."
    ),
    accelerator: str = typer.Option(_D.accelerator, "--accelerator", help="auto, cpu, cuda or mps."),
    runtime: str = typer.Option(_D.runtime, "--runtime", help="torch, or onnx (onnxruntime; exported once)."),
    token: str = typer.Option(
        None, "--token", envvar="TRANSFERLAB_TOKEN", help="Require 'Authorization: Bearer TOKEN' (or set the env var)."
    ),
    max_upload_mb: float = typer.Option(_D.max_upload_mb, "--max-upload-mb", help="Largest request body."),
    max_images: int = typer.Option(_D.max_images, "--max-images", help="Most images per request (and GAN samples)."),
) -> None:
    """Serve trained runs over HTTP: a JSON/PNG API, KServe v2 routes, /metrics and a web page at /."""
    from transferlab.serve.server import serve as run_server

    run_server(
        list(runs or []), models_dir, host=host, port=port, workers=workers, max_batch_size=max_batch_size,
        batch_timeout_ms=batch_timeout_ms, accelerator=accelerator, runtime=runtime, token=token,
        max_upload_mb=max_upload_mb, max_images=max_images,
    )  # fmt: skip
