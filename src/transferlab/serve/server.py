"""Putting it together: LitServe workers for the runs, the HTTP routes, and a start and stop
that keep requests whole (SIGTERM drains the requests in flight before the workers stop)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferlab.errors import UsageError
from transferlab.options.serve import ServeOptions

if TYPE_CHECKING:
    from transferlab.serve.catalog import ServedModel

log = logging.getLogger("transferlab.serve")
DRAIN_SECONDS = 30


def make_workers(catalog: list[ServedModel], opts: ServeOptions) -> list[Any]:
    """One LitServe worker per served run, in catalog order."""
    workers = []
    for served in catalog:
        lit = {
            "api_path": f"/_workers/{served.name}",
            "max_batch_size": opts.max_batch_size if served.kind.serving.batched else 1,
            "batch_timeout": opts.batch_timeout_ms / 1000,
        }
        lit.update(served.kind.serving.worker_options(served, opts))  # e.g. the classifier's --runtime
        workers.append(served.kind.serving.worker(str(served.run.path), **lit))
    return workers


def build_server(catalog: list[ServedModel], opts: ServeOptions) -> Any:
    """The LitServer with our routes; its own public routes are removed (requests reach the
    workers only through ``http.Routes``, after they have been checked)."""
    import litserve as ls

    # style and GAN workers keep batch()/unbatch() but answer one request at a time, on purpose
    warnings.filterwarnings("ignore", message=".*both batch and unbatch methods implemented.*")
    from transferlab.serve.http import Dispatch, Gate, Routes, install_error_handlers

    workers = make_workers(catalog, opts)
    names = frozenset(served.name for served in catalog)
    gate = {"token": opts.token, "max_bytes": int(opts.max_upload_mb * 2**20), "models": names}
    server = ls.LitServer(
        workers,
        accelerator="cuda" if opts.accelerator == "gpu" else opts.accelerator,
        workers_per_device=opts.workers,
        timeout=opts.timeout,
        max_payload_size=gate["max_bytes"],
        middlewares=[(Gate, gate)],
        healthcheck_path="/_litserve/health",
        info_path="/_litserve/info",
    )
    hidden = {"/", "/_litserve/health", "/_litserve/info", *(w.api_path for w in workers)}
    server.app.router.routes = [r for r in server.app.router.routes if getattr(r, "path", None) not in hidden]
    server.app.title, server.app.description = "transferlab serve", "Trained transferlab runs over HTTP."
    install_error_handlers(server.app)
    dispatch = {served.name: Dispatch(server, served, worker) for served, worker in zip(catalog, workers)}
    Routes(server.app, dispatch, opts, lambda: workers_ready(server)).register()
    return server


def workers_ready(server: Any) -> bool:
    """Every model worker has loaded its model (LitServe's status table exists once it runs)."""
    status = getattr(server, "workers_setup_status", None)
    return bool(status) and all(state == "ready" for state in dict(status).values())


def _drain_then_stop(server: Any) -> None:
    """SIGTERM/SIGINT: the HTTP process stops accepting and finishes its requests (uvicorn's
    graceful shutdown) while the model workers still run; only then LitServe stops the rest.
    (LitServe's own shutdown closes the worker transport first, which would drop them.)"""
    for child in multiprocessing.active_children():
        if child.name.startswith("LitServer-"):
            child.terminate()  # SIGTERM: uvicorn's graceful shutdown
    for child in multiprocessing.active_children():
        if child.name.startswith("LitServer-"):
            child.join(DRAIN_SECONDS)
    if server._shutdown_event is not None:
        server._shutdown_event.set()


def _check_runtime(catalog: list[ServedModel], opts: ServeOptions) -> None:
    """A ``--runtime`` no served model runs in (``Serving.runtimes``: classifiers take ONNX) is
    refused rather than ignored."""
    if not any(opts.runtime in m.kind.serving.runtimes for m in catalog):
        raise UsageError(f"--runtime {opts.runtime} runs classifiers, and none of {', '.join(m.name for m in catalog)} "
                         "is one", "leave out --runtime: the other kinds run in torch")  # fmt: skip


def serve(runs: list[str | Path], models_dir: str | Path | None = None, **options: Any) -> None:
    """Serve trained runs over HTTP until SIGTERM or Ctrl-C (the requests in flight are answered)."""
    from transferlab.serve.catalog import load_catalog

    opts = ServeOptions(**options)
    opts.check()  # bad options fail here, before any model is built
    catalog = load_catalog(runs, models_dir)
    _check_runtime(catalog, opts)
    server = build_server(catalog, opts)
    stopping, parent = threading.Event(), os.getpid()

    def on_signal(signum: int, frame: Any) -> None:
        if os.getpid() != parent:  # a forked HTTP process inherited this handler: stop as by default
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        # the main thread is inside a blocking call to LitServe's manager: work from a new thread
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=_drain_then_stop, args=(server,), daemon=True).start()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.warning("serving %s on http://%s:%d", ", ".join(m.name for m in catalog), opts.host, opts.port)
        server.run(
            host=opts.host,
            port=opts.port,
            num_api_servers=1,  # one HTTP process: its /metrics see every request
            generate_client_file=False,
            log_level="error",
            api_server_worker_type="process",
        )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
