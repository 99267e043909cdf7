"""The HTTP API on LitServe's FastAPI app: the server's own routes (health, the model list,
Prometheus metrics, the web page, the Open Inference Protocol's server routes) and each served
kind's model routes, which its task declares (``tasks/NAME/serving.py``, see ``serve/kinds.py``).

Routes check and decode a request here, then hand clean arrays to the run's LitServe worker
queue through ``Dispatch`` (LitServe's own request handler, so its batching, timeouts and
error passing apply), and turn the worker's arrays into JSON or PNG.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from transferlab.serve import metrics
from transferlab.serve.catalog import KINDS, ServedModel
from transferlab.serve.inputs import ApiError, ImageRequest, decode_images, read_uploads
from transferlab.serve.kinds import Handler

log = logging.getLogger("transferlab.serve")

#: Paths anyone may open when the server has a token: the page (it asks for the token) and probes.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/favicon.ico", "/v2/health/live", "/v2/health/ready"})
REMEDIES = {
    401: "send the header Authorization: Bearer <token> (the token given to transferlab serve)",
    404: "GET /models lists the served models and their endpoints; GET /docs the whole API",
    405: "see GET /docs for the methods each endpoint takes",
    413: "send less: see --max-upload-mb and --max-images of transferlab serve",
    504: "the server is busy; retry, or start it with more --workers",
}
_MODEL_PATH = re.compile(r"^/(?:v2/)?models/([^/]+)(?:/([a-z-]+))?$")


def error_response(status: int, cause: str, remedy: str = "") -> JSONResponse:
    return JSONResponse({"error": cause, "remedy": remedy or REMEDIES.get(status, ""), "status": status}, status)


class Gate:
    """ASGI middleware: bearer-token check, early refusal of oversized bodies, and the
    request count / latency / in-flight metrics labelled by model and endpoint."""

    def __init__(self, app: Any, *, token: str | None, max_bytes: int, models: frozenset[str]) -> None:
        self.app, self.token, self.max_bytes, self.models = app, token, max_bytes, models

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        refusal = self._refusal(scope["path"], headers)
        model, endpoint = self._labels(scope["path"])
        status, start = [500], time.perf_counter()

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        metrics.IN_FLIGHT.inc()
        try:
            if refusal is not None:
                await refusal(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            metrics.IN_FLIGHT.dec()
            metrics.REQUESTS.labels(model, endpoint, str(status[0])).inc()
            metrics.LATENCY.labels(model, endpoint).observe(time.perf_counter() - start)

    def _refusal(self, path: str, headers: dict[bytes, bytes]) -> Response | None:
        if self.token and path not in PUBLIC_PATHS:
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                cause = "a valid bearer token is required" if given else "the request has no Authorization header"
                return error_response(401, cause)
        length = headers.get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.max_bytes:
            size = int(length) / 2**20
            return error_response(413, f"the upload is {size:.1f} MB; this server takes {self.max_bytes / 2**20:g} MB")
        return None

    def _labels(self, path: str) -> tuple[str, str]:
        """Bounded label values: known model names and endpoint words only."""
        match = _MODEL_PATH.match(path)
        if match:
            model = match.group(1) if match.group(1) in self.models else "unknown"
            return model, ("v2-" if path.startswith("/v2") else "") + (match.group(2) or "metadata")
        return "", path if path in ("/", "/healthz", "/readyz", "/metrics", "/models") else "other"


class Dispatch:
    """Sends a checked payload to one run's worker queue and waits for its answer."""

    def __init__(self, server: Any, served: ServedModel, worker: Any) -> None:
        from litserve.server import RegularRequestHandler

        self.served, self.handler = served, RegularRequestHandler(worker, server)

    async def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        output = await self.handler.handle_request(payload, dict)
        metrics.observe_batch(self.served.name, output)
        return output


def install_error_handlers(app: FastAPI) -> None:
    """Every error is a JSON body with the cause and a remedy; never a traceback."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.cause, exc.remedy)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no endpoint {request.method} {request.url.path}"
        return error_response(exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, f"the request does not fit this endpoint: {exc.errors()[0].get('msg', '')}")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s", request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__})", "see the server's log, and report it")


class Routes:
    """The server's endpoints for a catalog of served runs."""

    def __init__(self, app: FastAPI, dispatch: dict[str, Dispatch], opts: Any, ready: Callable[[], bool]) -> None:
        self.app, self.dispatch, self.opts, self.ready = app, dispatch, opts, ready
        self.models = {name: d.served for name, d in dispatch.items()}
        self.page_html = resources.files("transferlab.serve").joinpath("page.html").read_text()  # read once
        self._memo: dict[Any, Any] = {}

    # ------------------------------------------------------------------ shared
    def model(self, name: str, kind: str | None = None) -> ServedModel:
        served = self.models.get(name)
        if served is None:
            raise ApiError(404, f"no model named {name!r}", f"served models: {', '.join(sorted(self.models))}")
        if kind is not None and served.kind.name != kind:
            raise ApiError(
                404, f"{name} is a {served.kind.name} model; this endpoint is for {kind} models", REMEDIES[404]
            )
        return served

    async def images(self, request: Request) -> ImageRequest:
        uploads, options = await read_uploads(request, self.opts.max_images)
        return ImageRequest([u.name for u in uploads], await decode_images(uploads), options)

    def endpoints(self, served: ServedModel) -> list[str]:
        return [endpoint.format(name=served.name) for endpoint in served.kind.endpoints]

    def register(self) -> None:
        routes = [  # (methods, path, handler, summary); no summary: left out of the OpenAPI description
            (["GET"], "/", self.page, None),
            (["GET"], "/healthz", self.healthz, "Liveness"),
            (["GET"], "/readyz", self.readyz, "Readiness: every model worker is loaded"),
            (["GET"], "/metrics", self.metrics, "Prometheus metrics"),
            (["GET"], "/models", self.list_models, "The served models with their run metadata"),
            (["GET"], "/models/{name}", self.model_metadata, "One model's metadata"),
            # the Open Inference Protocol (KServe v2): the server's routes; a model's are its kind's
            (["GET"], "/v2", self.v2_server, "KServe v2: server metadata"),
            (["GET"], "/v2/health/live", self.v2_live, "KServe v2: live"),
            (["GET"], "/v2/health/ready", self.readyz, "KServe v2: ready"),
        ]
        for methods, path, handler, summary in routes:
            self.app.add_api_route(path, handler, methods=methods, summary=summary, include_in_schema=bool(summary))
        for kind in KINDS.values():  # every kind's routes: a model of another kind gets a clear 404
            for route in kind.serving.routes:
                self.app.add_api_route(route.path, self._bound(route.handler), methods=list(route.methods),
                                       summary=route.summary, description=route.handler.__doc__ or "")  # fmt: skip

    def _bound(self, handler: Handler) -> Callable[[str, Request], Awaitable[Any]]:
        """A kind's handler as a FastAPI endpoint of (the model's name in the path, the request)."""

        async def endpoint(name: str, request: Request) -> Any:
            return await handler(self, name, request)

        endpoint.__name__ = handler.__name__  # FastAPI's operation id
        return endpoint

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """``make()``'s value, computed once per server (e.g. a model's preprocessing)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    # ------------------------------------------------------------------ service
    async def page(self) -> HTMLResponse:
        return HTMLResponse(self.page_html)

    async def healthz(self) -> dict[str, str]:
        return {"status": "ok"}

    async def readyz(self) -> JSONResponse:
        ready = await run_in_threadpool(self.ready)
        return JSONResponse({"ready": ready}, 200 if ready else 503)

    async def metrics(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def list_models(self) -> dict[str, Any]:
        limits = {"max_images": self.opts.max_images, "max_upload_mb": self.opts.max_upload_mb}
        return {
            "models": [{**m.metadata(), "endpoints": self.endpoints(m)} for m in self.models.values()],
            "limits": limits,
        }

    async def model_metadata(self, name: str) -> dict[str, Any]:
        served = self.model(name)
        return {**served.metadata(), "endpoints": self.endpoints(served)}

    # ------------------------------------------------------------------ Open Inference Protocol (KServe v2)
    async def v2_server(self) -> dict[str, Any]:
        from transferlab import __version__

        return {"name": "transferlab", "version": __version__, "extensions": []}

    async def v2_live(self) -> dict[str, bool]:
        return {"live": True}
