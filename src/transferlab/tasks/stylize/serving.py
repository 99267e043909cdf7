"""How the server serves style networks (``stylize train`` runs): a worker that stylises one image
of any size (scaled to ``max_side``), and the route that answers with a PNG or JSON."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, Response
from PIL import Image

from transferlab.registry import load_run
from transferlab.runs import STYLE, RunInfo
from transferlab.serve.inputs import int_option, png_bytes
from transferlab.serve.kinds import Route, Serving
from transferlab.serve.outputs import png_entry
from transferlab.serve.workers import RunWorker, with_batch_info

KIND = "style"


class StyleWorker(RunWorker):
    """A style network applied to one uint8 H x W x 3 image (any size; scaled to ``max_side``)."""

    def setup(self, device: str) -> None:
        import torch

        from transferlab.tasks.stylize.feedforward import load_style_model

        torch.set_grad_enabled(False)
        self.device = torch.device(device)
        self.model = load_style_model(self.run_dir).to(self.device)

    def predict_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import torch

        from transferlab.pixels import channels_last_array, unit_to_uint8
        from transferlab.tasks.stylize.optimize import resize_long_side

        outputs = []
        for request in requests:  # sizes differ between requests, so each runs on its own
            image = torch.from_numpy(request["pixels"]).permute(2, 0, 1)[None].float() / 255.0
            if max(image.shape[-2:]) > request["max_side"]:
                image = resize_long_side(image, request["max_side"])
            styled = self.model(image.to(self.device)).float().clamp(0, 1)[0]
            outputs.append({"pixels": channels_last_array(unit_to_uint8(styled))})
        return with_batch_info(outputs, len(requests))


def describe(run: RunInfo) -> dict[str, Any]:
    load_run(STYLE, run.path)
    return {"style": run.extra.get("style", ""), "width": run.model.get("width"), "blocks": run.model.get("blocks")}


async def stylize(api: Any, name: str, request: Any) -> Response:
    """One image in, a PNG out; several images (or format=json) give JSON with base64 PNGs."""
    api.model(name, KIND)
    got = await api.images(request)
    max_side = int_option(got.options, "max_side", 1024, 16, 4096)
    outputs = await asyncio.gather(*[
        api.dispatch[name]({"pixels": np.array(image), "max_side": max_side}) for image in got.images
    ])  # fmt: skip
    pngs = [png_bytes(Image.fromarray(o["pixels"])) for o in outputs]
    if len(pngs) == 1 and got.options.get("format", "png") == "png":
        return Response(pngs[0], media_type="image/png")
    return JSONResponse({"model": name, "images": [png_entry(f, p) for f, p in zip(got.names, pngs)]})


SERVING = {
    KIND: Serving(
        StyleWorker,
        describe,
        batched=False,  # sizes differ between requests: one at a time, on purpose
        routes=(Route(("POST",), "/models/{name}/stylize", stylize, "Style network: the stylised image"),),
    )
}
