"""Reading images out of HTTP requests, and the errors a client can act on.

Everything here runs in the HTTP process, before a request reaches a model worker: LitServe
batches requests together, and one bad request inside a batch would fail all of them, so a
request is checked completely (content type, count, decodability, pixel limit) first.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from transferlab.data.images import BadImage, load_rgb


class ApiError(Exception):
    """A request the server cannot serve as sent: an HTTP status, a cause and a remedy."""

    def __init__(self, status: int, cause: str, remedy: str) -> None:
        super().__init__(cause)
        self.status, self.cause, self.remedy = status, cause, remedy

    def body(self) -> dict[str, Any]:
        return {"error": self.cause, "remedy": self.remedy, "status": self.status}


@dataclass
class Upload:
    name: str
    data: bytes


@dataclass
class ImageRequest:
    """The images of one request (decoded RGB) and its options (query, form or JSON fields)."""

    names: list[str]
    images: list[Image.Image]
    options: dict[str, Any]


def decode_base64(text: str, name: str) -> bytes:
    """Plain base64 or a ``data:image/...;base64,`` URL."""
    if not isinstance(text, str):
        raise ApiError(422, f"{name} is not a base64 string", 'send {"images": ["<base64 of an image file>", ...]}')
    payload = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, f"{name} is not valid base64", "encode the image file's bytes with base64") from None


def decode_image(upload: Upload) -> Image.Image:
    """One uploaded file as RGB; not an image, truncated or a decompression bomb is a 4xx."""
    try:
        return load_rgb(io.BytesIO(upload.data))
    except BadImage as bad:
        status = 413 if "decompression bomb" in bad.reason else 422
        remedy = "send a smaller image" if status == 413 else "send PNG, JPEG, WebP, BMP, GIF or TIFF files"
        raise ApiError(status, f"{upload.name}: {bad.reason}", remedy) from None


async def decode_images(uploads: list[Upload]) -> list[Image.Image]:
    """Decoded off the event loop: JPEG/PNG decoding would stall every other request."""
    return await run_in_threadpool(lambda: [decode_image(u) for u in uploads])


async def read_uploads(request: Any, max_images: int) -> tuple[list[Upload], dict[str, Any]]:
    """The files of a multipart form or a JSON ``{"images": [base64, ...]}`` body, with the other fields."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=max_images + 1, max_fields=100)
        uploads, options = [], {}
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                uploads.append(Upload(value.filename or key, await value.read()))
            else:
                options[key] = value
    elif content_type == "application/json":
        body = await _json_body(request)
        uploads = base64_uploads(body.get("images", []), "images")
        options = {k: v for k, v in body.items() if k != "images"}
    else:
        raise ApiError(
            415,
            f"content type {content_type or '(none)'} is not accepted here",
            "send multipart/form-data with image files, or application/json with base64 images",
        )
    check_count(uploads, max_images)
    return uploads, options


def base64_uploads(items: Any, field: str) -> list[Upload]:
    """A JSON list of base64 image files (one string counts as a list of one), named ``field[i]``."""
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, list):
        raise ApiError(422, f'"{field}" is not a list', f'send {{"{field}": ["<base64 of an image file>", ...]}}')
    return [Upload(f"{field}[{i}]", decode_base64(text, f"{field}[{i}]")) for i, text in enumerate(items)]


def check_count(uploads: list[Upload], max_images: int) -> None:
    if not uploads:
        raise ApiError(422, "the request holds no image", "attach at least one image file (form field 'files')")
    if len(uploads) > max_images:
        raise ApiError(
            413, f"{len(uploads)} images in one request; this server takes at most {max_images}", "split the request"
        )


async def _json_body(request: Any) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(400, "the body is not valid JSON", "send a JSON object") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the JSON body is not an object", 'send {"images": [...], ...}')
    return body


async def read_json_object(request: Any) -> dict[str, Any]:
    """A JSON object body (an empty body is ``{}``); other content types are a 415."""
    if not await request.body():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, f"content type {content_type or '(none)'} is not accepted here", "send application/json")
    return await _json_body(request)


def int_option(options: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    """A whole-number option in ``low..high``; anything else is a 422 naming the field."""
    value = options.get(key, default)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):  # no floats, lists or booleans
            raise ValueError
        number = int(value)
    except ValueError:
        raise ApiError(422, f"{key}={value!r} is not a whole number", f"give {key} between {low} and {high}") from None
    if not low <= number <= high:
        raise ApiError(422, f"{key}={number} is outside {low}..{high}", f"give {key} between {low} and {high}")
    return number


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def float_option(options: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    """A number option in ``[low, high)``; anything else is a 422 naming the field."""
    value = options.get(key, default)
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value)
    except ValueError:
        raise ApiError(422, f"{key}={value!r} is not a number", f"give {key} from {low} up to {high}") from None
    if not low <= number < high:  # also refuses nan
        raise ApiError(422, f"{key}={number} is outside [{low}, {high})", f"give {key} from {low} up to {high}")
    return number


def bool_option(options: dict[str, Any], key: str) -> bool:
    """A yes/no option (true/false, 1/0, yes/no; JSON booleans); anything else is a 422."""
    value = options.get(key, False)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("true", "false", "1", "0", "yes", "no", ""):
        raise ApiError(422, f"{key}={value!r} is not true or false", f"give {key}=true or {key}=false")
    return text in ("true", "1", "yes")


#: Images are explained at most this large (the longer side; the map is drawn over this copy).
EXPLAIN_MAX_SIDE = 1024


def for_explaining(image: Image.Image) -> np.ndarray:
    """The whole image (no crop) as uint8 H x W x 3, its longer side at most EXPLAIN_MAX_SIDE."""
    copy = image.copy()
    copy.thumbnail((EXPLAIN_MAX_SIDE, EXPLAIN_MAX_SIDE))
    return np.asarray(copy.convert("RGB"), dtype=np.uint8)
