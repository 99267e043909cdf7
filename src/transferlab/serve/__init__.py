"""``serve``: trained runs behind an HTTP API and a web page (LitServe).

from transferlab import serve
serve.serve(["runs/classify/my-run", "runs/gan/faces"], port=8000, max_batch_size=8)

Parts: ``catalog`` (which runs, checked before the start), ``workers`` (LitServe's model side,
batched), ``inputs`` (request parsing and checks), ``http`` (routes, KServe v2, metrics, page),
``server`` (assembly, drain on SIGTERM).
"""

from __future__ import annotations

from transferlab.serve.server import ServeOptions, serve

__all__ = ["ServeOptions", "serve"]
