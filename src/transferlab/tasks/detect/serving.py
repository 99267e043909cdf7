"""How the server serves detector runs: a worker that runs concurrent requests' images of any
sizes in one forward pass, and the route that answers with boxes as JSON or the image drawn."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from transferlab.registry import load_run
from transferlab.runs import DETECTOR, RunInfo
from transferlab.serve.inputs import ApiError, bool_option, float_option, png_bytes
from transferlab.serve.kinds import Route, Serving
from transferlab.serve.outputs import explanation_entry
from transferlab.serve.workers import RunWorker, explained, with_batch_info

KIND = "detector"


class DetectWorker(RunWorker):
    """A detect run applied to uint8 H x W x 3 images of any sizes, concurrent requests in one
    forward pass (the detector takes a list of sizes): boxes in each image's own pixels."""

    def setup(self, device: str) -> None:
        import torch

        from transferlab.tasks.detect import load_detector

        torch.set_grad_enabled(False)
        self.model, self.spec = load_detector(self.run_dir, torch.device(device))

    def predict_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import torch

        from transferlab.tasks.detect.inference import predict

        images = [torch.from_numpy(r["pixels"]).permute(2, 0, 1) for r in requests]
        found = predict(self.model, images, batch_size=max(1, len(images)))
        outputs = [{k: v.numpy() for k, v in f.items()} for f in found]
        asked = [i for i, r in enumerate(requests) if r.get("explain")]
        if asked:  # EigenCAM of the encoder, renormalised inside each box the detector finds
            self.explainer, maps = explained(self.run_dir, self.explainer, [requests[i]["pixels"] for i in asked])
            for i, found_map in zip(asked, maps):
                outputs[i]["explanation"] = found_map
        return with_batch_info(outputs, len(requests))


def describe(run: RunInfo) -> dict[str, Any]:
    _, spec = load_run(DETECTOR, run.path)
    return {"backbone": spec["backbone"], "detector": spec["detector"], "classes": spec["classes"],
            "img_size": spec["img_size"]}  # fmt: skip


def drawn(pixels: np.ndarray, output: dict[str, np.ndarray], classes: list[str], threshold: float) -> Image.Image:
    """The image with the worker's boxes above ``threshold`` drawn, as the report draws them."""
    import torch

    from transferlab.tasks.detect.report import draw

    found = {k: torch.from_numpy(output[k]) for k in ("boxes", "scores", "labels")}  # not the batch counts
    return Image.fromarray(draw(torch.from_numpy(pixels).permute(2, 0, 1), found, classes, threshold).permute(1, 2, 0)
                           .numpy())  # fmt: skip


async def detect(api: Any, name: str, request: Any) -> Response:
    """Boxes (x1 y1 x2 y2 in the image's pixels) with class and score as JSON; one image with
    format=png: the image with its boxes drawn. Option score_threshold (default 0.3)."""
    served = api.model(name, KIND)
    got = await api.images(request)
    wanted = got.options.get("format", "json")
    if wanted not in ("json", "png"):
        raise ApiError(422, f"format {wanted!r} is not json or png", "use format=json or png")
    threshold = float_option(got.options, "score_threshold", 0.3, 0.0, 1.0)
    explain = bool_option(got.options, "explain")  # maps come in JSON, whatever the format
    pixels = [np.array(image) for image in got.images]
    outputs = await asyncio.gather(*[api.dispatch[name]({"pixels": p, "explain": explain}) for p in pixels])
    classes = served.details["classes"]
    if len(outputs) == 1 and wanted == "png" and not explain:
        return Response(png_bytes(await run_in_threadpool(drawn, pixels[0], outputs[0], classes, threshold)),
                        media_type="image/png")  # fmt: skip
    entries = []
    for file, image, output in zip(got.names, pixels, outputs):
        keep = output["scores"] >= threshold
        boxes, scores, labels = output["boxes"][keep], output["scores"][keep], output["labels"][keep]
        found = [{"label": classes[c], "index": int(c), "score": round(float(s), 4),
                  "box": [round(float(v), 1) for v in b]} for b, s, c in zip(boxes, scores, labels)]  # fmt: skip
        entries.append({"file": file, "width": image.shape[1], "height": image.shape[0], "detections": found})
        if "explanation" in output:
            entries[-1]["explanation"] = explanation_entry(output["explanation"], classes)
    return JSONResponse({"model": name, "score_threshold": threshold, "images": entries})


SERVING = {
    KIND: Serving(
        DetectWorker,
        describe,
        batched=True,  # lists of images of any sizes batch
        routes=(
            Route(("POST",), "/models/{name}/detect", detect, "Detector: boxes as JSON, or the image drawn (PNG)"),
        ),
    )
}
