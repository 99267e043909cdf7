"""What a task gives the server for each kind of run it serves: its ``tasks/NAME/serving.py``
holds one :class:`Serving` per served kind (``SERVING``, by the served name of its record's
``serves``), so a new servable task touches its own folder and its registry record, not the server.

The server's own plumbing (the catalog, the LitServe workers' queueing and batching, the routes
every server has, the error bodies, the metrics) stays in ``serve/``; a kind's routes receive the
server's :class:`~transferlab.serve.http.Routes` as ``api`` and use its shared parts:
``api.model(name, kind)`` (the served run, refused if of another kind), ``await api.images(request)``
(checked uploads), ``await api.dispatch[name](payload)`` (the worker's answer), ``api.opts`` (the
server's options) and ``api.memo`` (a value computed once per server).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

#: A route's handler: (the server's Routes, the model's name in the path, the request) -> response.
Handler = Callable[[Any, str, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    """One HTTP route of a kind: ``path`` holds ``{name}``, the served model's name."""

    methods: tuple[str, ...]
    path: str
    handler: Handler
    summary: str


def no_worker_options(served: Any, opts: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Serving:
    """How the server serves one kind of run.

    ``worker``: the LitServe API class (``serve.workers.RunWorker``) that runs the model;
    ``describe(run)``: builds the model once (raising if it cannot) and returns what ``/models``
    says of it; ``batched``: whether concurrent requests are worth batching; ``routes``: its
    endpoints; ``worker_options(served, opts)``: the worker's own keyword arguments from the
    server's options (e.g. the classifier's runtime); ``runtimes``: the ``--runtime`` values its
    worker runs in."""

    worker: type
    describe: Callable[[Any], dict[str, Any]]
    batched: bool
    routes: tuple[Route, ...]
    worker_options: Callable[[Any, Any], dict[str, Any]] = no_worker_options
    runtimes: tuple[str, ...] = ("torch",)
