"""The HTTP API on LitServe's FastAPI app: per-kind model routes, the Open Inference Protocol
(KServe v2) for classifiers, health, the model list, Prometheus metrics and the web page.

Routes check and decode a request here, then hand clean arrays to the run's LitServe worker
queue through ``Dispatch`` (LitServe's own request handler, so its batching, timeouts and
error passing apply), and turn the worker's arrays into JSON or PNG.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from transferlab.data.transforms import split_eval_transform
from transferlab.serve import metrics
from transferlab.serve.catalog import ServedModel
from transferlab.serve.inputs import (
    ApiError,
    ImageRequest,
    Upload,
    base64_uploads,
    bool_option,
    check_count,
    decode_image,
    float_option,
    for_explaining,
    int_option,
    png_bytes,
    read_json_object,
    read_uploads,
)

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
        self.to_pixels = {  # the image half of each classifier's eval transform (see data.transforms)
            name: split_eval_transform(m.details["preprocessing"])[0]
            for name, m in self.models.items()
            if m.kind.name == "classifier"
        }

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
        both = ["GET", "POST"]
        routes = [  # (methods, path, handler, summary); no summary: left out of the OpenAPI description
            (["GET"], "/", self.page, None),
            (["GET"], "/healthz", self.healthz, "Liveness"),
            (["GET"], "/readyz", self.readyz, "Readiness: every model worker is loaded"),
            (["GET"], "/metrics", self.metrics, "Prometheus metrics"),
            (["GET"], "/models", self.list_models, "The served models with their run metadata"),
            (["GET"], "/models/{name}", self.model_metadata, "One model's metadata"),
            (["POST"], "/models/{name}/predict", self.predict, "Classifier: top-k classes of uploaded images"),
            (["POST"], "/models/{name}/stylize", self.stylize, "Style network: the stylised image"),
            (["POST"], "/models/{name}/segment", self.segment, "Segmenter: the overlay, the class mask, or JSON"),
            (["POST"], "/models/{name}/detect", self.detect, "Detector: boxes as JSON, or the image drawn (PNG)"),
            (both, "/models/{name}/generate", self.generate, "GAN: a grid of samples"),
            (both, "/models/{name}/interpolate", self.interpolate, "GAN: latent interpolations"),
            # the Open Inference Protocol (KServe v2), for classifiers
            (["GET"], "/v2", self.v2_server, "KServe v2: server metadata"),
            (["GET"], "/v2/health/live", self.v2_live, "KServe v2: live"),
            (["GET"], "/v2/health/ready", self.readyz, "KServe v2: ready"),
            (["GET"], "/v2/models/{name}", self.v2_metadata, "KServe v2: model metadata"),
            (["GET"], "/v2/models/{name}/ready", self.v2_model_ready, "KServe v2: model ready"),
            (["POST"], "/v2/models/{name}/infer", self.v2_infer, "KServe v2: inference"),
        ]
        for methods, path, handler, summary in routes:
            self.app.add_api_route(path, handler, methods=methods, summary=summary, include_in_schema=bool(summary))

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

    # ------------------------------------------------------------------ classifiers
    async def predict(self, name: str, request: Request) -> dict[str, Any]:
        """Multipart files (any field name) or JSON {"images": [base64, ...]}; option topk (default 5)."""
        served = self.model(name, "classifier")
        classes = served.details["classes"]
        got = await self.images(request)
        topk = int_option(got.options, "topk", min(5, len(classes)), 1, len(classes))
        explain = bool_option(got.options, "explain")
        output = await self.classify(served, got.images, explain)
        probabilities = _softmax(output["logits"])
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :topk]
        predictions = [
            {"file": file, "top": [{"label": classes[i], "index": int(i), "probability": float(p[i])} for i in row]}
            for file, row, p in zip(got.names, top, probabilities)
        ]
        for prediction, found in zip(predictions, output.get("explanations", [])):
            prediction["explanation"] = _explanation(found, classes)
        return {"model": name, "predictions": predictions}

    async def classify(self, served: ServedModel, images: list[Image.Image], explain: bool = False) -> dict[str, Any]:
        to_pixels = self.to_pixels[served.name]
        pixels = await run_in_threadpool(lambda: np.stack([to_pixels(image) for image in images]))
        request: dict[str, Any] = {"pixels": pixels}
        if explain:  # the whole images, not the crops: a map shows the whole picture
            request["explain"] = await run_in_threadpool(lambda: [for_explaining(image) for image in images])
        return await self.dispatch[served.name](request)

    # ------------------------------------------------------------------ style networks
    async def stylize(self, name: str, request: Request) -> Response:
        """One image in, a PNG out; several images (or format=json) give JSON with base64 PNGs."""
        self.model(name, "style")
        got = await self.images(request)
        max_side = int_option(got.options, "max_side", 1024, 16, 4096)
        outputs = await asyncio.gather(*[
            self.dispatch[name]({"pixels": np.array(image), "max_side": max_side}) for image in got.images
        ])  # fmt: skip
        pngs = [png_bytes(Image.fromarray(o["pixels"])) for o in outputs]
        if len(pngs) == 1 and got.options.get("format", "png") == "png":
            return Response(pngs[0], media_type="image/png")
        return JSONResponse({"model": name, "images": [_png_entry(f, p) for f, p in zip(got.names, pngs)]})

    # ------------------------------------------------------------------ segmenters
    async def segment(self, name: str, request: Request) -> Response:
        """One image in: its overlay as a PNG (format=png), or the class-index mask (format=mask);
        several images or format=json: JSON with both as base64 PNGs and each class's share."""
        served = self.model(name, "segmenter")
        got = await self.images(request)
        wanted = got.options.get("format", "png")
        if wanted not in ("png", "mask", "json"):
            raise ApiError(422, f"format {wanted!r} is not png, mask or json", "use format=png, mask or json")
        explain = bool_option(got.options, "explain")  # maps come in JSON, whatever the format
        outputs = await asyncio.gather(*[
            self.dispatch[name]({"pixels": np.array(image), "explain": explain}) for image in got.images
        ])  # fmt: skip
        if len(outputs) == 1 and wanted != "json" and not explain:
            picture = outputs[0]["overlay" if wanted == "png" else "mask"]
            return Response(png_bytes(Image.fromarray(picture)), media_type="image/png")
        classes = served.details["classes"]
        entries = []
        for file, output in zip(got.names, outputs):
            counts = np.bincount(output["mask"].ravel(), minlength=len(classes))[: len(classes)] / output["mask"].size
            entry = _png_entry(file, png_bytes(Image.fromarray(output["overlay"])))
            entries.append({**entry, "mask_png_base64": base64.b64encode(png_bytes(Image.fromarray(output["mask"])))
                            .decode(), "classes": dict(zip(classes, np.round(counts, 4).tolist()))})  # fmt: skip
            if "explanation" in output:
                entries[-1]["explanation"] = _explanation(output["explanation"], classes)
        return JSONResponse({"model": name, "images": entries})

    # ------------------------------------------------------------------ detectors
    async def detect(self, name: str, request: Request) -> Response:
        """Boxes (x1 y1 x2 y2 in the image's pixels) with class and score as JSON; one image with
        format=png: the image with its boxes drawn. Option score_threshold (default 0.3)."""
        served = self.model(name, "detector")
        got = await self.images(request)
        wanted = got.options.get("format", "json")
        if wanted not in ("json", "png"):
            raise ApiError(422, f"format {wanted!r} is not json or png", "use format=json or png")
        threshold = float_option(got.options, "score_threshold", 0.3, 0.0, 1.0)
        explain = bool_option(got.options, "explain")  # maps come in JSON, whatever the format
        pixels = [np.array(image) for image in got.images]
        outputs = await asyncio.gather(*[self.dispatch[name]({"pixels": p, "explain": explain}) for p in pixels])
        classes = served.details["classes"]
        if len(outputs) == 1 and wanted == "png" and not explain:
            return Response(png_bytes(await run_in_threadpool(_drawn, pixels[0], outputs[0], classes, threshold)),
                            media_type="image/png")  # fmt: skip
        entries = []
        for file, image, output in zip(got.names, pixels, outputs):
            keep = output["scores"] >= threshold
            boxes, scores, labels = output["boxes"][keep], output["scores"][keep], output["labels"][keep]
            found = [{"label": classes[c], "index": int(c), "score": round(float(s), 4),
                      "box": [round(float(v), 1) for v in b]} for b, s, c in zip(boxes, scores, labels)]  # fmt: skip
            entries.append({"file": file, "width": image.shape[1], "height": image.shape[0], "detections": found})
            if "explanation" in output:
                entries[-1]["explanation"] = _explanation(output["explanation"], classes)
        return JSONResponse({"model": name, "score_threshold": threshold, "images": entries})

    # ------------------------------------------------------------------ GANs
    async def gan_options(self, served: ServedModel, request: Request) -> dict[str, Any]:
        options = dict(request.query_params)
        if request.method == "POST":
            options.update(await read_json_object(request))
        label = options.get("class")
        classes = served.details["classes"]
        if label not in (None, "") and not classes:
            raise ApiError(422, f"{served.name} is not class-conditional", "leave out 'class'")
        if label not in (None, "") and str(label) in classes:
            label = classes.index(str(label))
        elif label not in (None, ""):
            label = int_option({"class": label}, "class", 0, 0, len(classes) - 1)
        else:
            label = None
        return {**options, "label": label, "seed": int_option(options, "seed", 0, 0, 2**31 - 1)}

    async def generate(self, name: str, request: Request) -> Response:
        """n images for a seed (and class) as a PNG grid, or JSON base64 PNGs with format=json."""
        served = self.model(name, "gan")
        options = await self.gan_options(served, request)
        n = int_option(options, "n", 16, 1, self.opts.max_images)
        output = await self.dispatch[name]({"op": "sample", "n": n, **_pick(options, "seed", "label")})
        if options.get("format", "png") == "json":
            pngs = [png_bytes(_as_image(p)) for p in output["pixels"]]
            return JSONResponse({"model": name, "seed": options["seed"], "images": [_png_entry("", p) for p in pngs]})
        return Response(png_bytes(_grid(output["pixels"], columns=min(8, n))), media_type="image/png")

    async def interpolate(self, name: str, request: Request) -> Response:
        """rows x steps images between pairs of random latents, as one PNG (a row per pair)."""
        served = self.model(name, "gan")
        options = await self.gan_options(served, request)
        rows = int_option(options, "rows", 4, 1, 16)
        steps = int_option(options, "steps", 8, 2, 16)
        payload = {"op": "interpolate", "rows": rows, "steps": steps, **_pick(options, "seed", "label")}
        output = await self.dispatch[name](payload)
        return Response(png_bytes(_grid(output["pixels"], columns=steps)), media_type="image/png")

    # ------------------------------------------------------------------ Open Inference Protocol (KServe v2)
    async def v2_server(self) -> dict[str, Any]:
        from transferlab import __version__

        return {"name": "transferlab", "version": __version__, "extensions": []}

    async def v2_live(self) -> dict[str, bool]:
        return {"live": True}

    async def v2_model_ready(self, name: str) -> dict[str, Any]:
        self.model(name, "classifier")
        return {"name": name, "ready": await run_in_threadpool(self.ready)}

    async def v2_metadata(self, name: str) -> dict[str, Any]:
        served = self.model(name, "classifier")
        classes = len(served.details["classes"])
        return {
            "name": name,
            "versions": ["1"],
            "platform": "onnxruntime_onnx" if self.opts.runtime.startswith("onnx") else "pytorch_torch",
            "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, *served.details["input_size"]]}],
            "outputs": [
                {"name": "logits", "datatype": "FP32", "shape": [-1, classes]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes]},
            ],
            "parameters": {
                "classes": served.details["classes"],
                "preprocessing": served.details["preprocessing"],
                "image_files": "an input of datatype BYTES holding base64 image files is accepted too",
            },
        }

    async def v2_infer(self, name: str, request: Request) -> dict[str, Any]:
        """Inputs: FP32 N x 3 x H x W normalised images (as the exported ONNX model takes), or
        BYTES base64 image files. Outputs: logits and probabilities (or those named in "outputs")."""
        served = self.model(name, "classifier")
        body = await read_json_object(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise ApiError(400, "the request needs exactly one entry in 'inputs'", "see GET /v2/models/{name}")
        tensor = inputs[0]
        if tensor.get("datatype") == "BYTES":
            uploads = base64_uploads(tensor.get("data") or [], "data")
            check_count(uploads, self.opts.max_images)
            output = await self.classify(served, await decode_images(uploads))
        else:
            output = await self.dispatch[name]({"tensor": self.v2_tensor(served, tensor)})
        logits = output["logits"]
        wanted = [o.get("name") for o in body.get("outputs") or []] or ["logits", "probabilities"]
        values = {"logits": logits, "probabilities": _softmax(logits)}
        unknown = sorted(set(wanted) - set(values))
        if unknown:
            raise ApiError(400, f"unknown outputs {unknown}", "ask for logits and/or probabilities")
        result = {"model_name": name, "model_version": "1", "outputs": [_v2_tensor(n, values[n]) for n in wanted]}
        return {**result, **({"id": body["id"]} if "id" in body else {})}

    def v2_tensor(self, served: ServedModel, tensor: dict[str, Any]) -> np.ndarray:
        expected = served.details["input_size"]
        shape = tensor.get("shape")
        if tensor.get("datatype") != "FP32" or not isinstance(shape, list) or list(shape[1:]) != list(expected):
            raise ApiError(
                400,
                f"input {tensor.get('name')!r} is {tensor.get('datatype')} {shape}; "
                f"expected FP32 [N, {', '.join(map(str, expected))}]",
                "send normalised images as FP32 N x C x H x W, or BYTES base64 image files",
            )
        if not 1 <= int(shape[0]) <= self.opts.max_images:
            raise ApiError(413, f"{shape[0]} images in one request", f"send 1..{self.opts.max_images} per request")
        try:
            array = np.asarray(tensor.get("data"), dtype=np.float32).reshape(shape)
        except (TypeError, ValueError):
            raise ApiError(400, f"the data of input {tensor.get('name')!r} does not fill shape {shape}", "") from None
        if not np.isfinite(array).all():
            raise ApiError(400, "the input holds NaN or infinite values", "send finite numbers")
        return array


async def decode_images(uploads: list[Upload]) -> list[Image.Image]:
    """Decoded off the event loop: JPEG/PNG decoding would stall every other request."""
    return await run_in_threadpool(lambda: [decode_image(u) for u in uploads])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _v2_tensor(name: str, values: np.ndarray) -> dict[str, Any]:
    return {"name": name, "datatype": "FP32", "shape": list(values.shape), "data": values.ravel().tolist()}


def _drawn(pixels: np.ndarray, output: dict[str, np.ndarray], classes: list[str], threshold: float) -> Image.Image:
    import torch

    from transferlab.tasks.detect.report import draw

    found = {k: torch.from_numpy(output[k]) for k in ("boxes", "scores", "labels")}  # not the batch counts
    return Image.fromarray(draw(torch.from_numpy(pixels).permute(2, 0, 1), found, classes, threshold).permute(1, 2, 0)
                           .numpy())  # fmt: skip


def _pick(options: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: options[k] for k in keys}


def _explanation(found: dict[str, Any], classes: list[str]) -> dict[str, Any]:
    """A worker's map as JSON: the class explained, its score, the peak (x, y) in the image's
    pixels, the map blended over the image (and a segmenter's uncertainty) as base64 PNGs."""
    entry = {"method": found["method"], "label": classes[found["class_index"]], "index": found["class_index"],
             "score": round(float(found["score"]), 6), "peak": list(found["peak"]),
             "png_base64": base64.b64encode(png_bytes(Image.fromarray(found["overlay"]))).decode()}  # fmt: skip
    if "boxes" in found:  # a detector's: each box with the map's peak inside it
        entry["boxes"] = found["boxes"]
    if "uncertainty" in found:
        entry["uncertainty_png_base64"] = base64.b64encode(png_bytes(Image.fromarray(found["uncertainty"]))).decode()
    return entry


def _png_entry(name: str, png: bytes) -> dict[str, str]:
    return {"file": name, "png_base64": base64.b64encode(png).decode()}


def _as_image(pixels: np.ndarray) -> Image.Image:
    return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def _grid(pixels: np.ndarray, columns: int) -> Image.Image:
    """N x H x W x C uint8 images tiled row by row (skimage's montage), 2 px dark padding."""
    from skimage.util import montage

    rows = -(-len(pixels) // columns)
    tiled = montage(pixels, grid_shape=(rows, columns), padding_width=2, fill=(24,) * pixels.shape[-1], channel_axis=-1)
    return _as_image(tiled.astype(np.uint8))
