"""How the server serves segmenter runs: a worker that segments one image of any size at its own
resolution, and the route that answers with the overlay, the class mask or JSON."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
from fastapi.responses import JSONResponse, Response
from PIL import Image

from transferlab.registry import load_run
from transferlab.runs import SEGMENTER, RunInfo
from transferlab.serve.inputs import ApiError, bool_option, png_bytes
from transferlab.serve.kinds import Route, Serving
from transferlab.serve.outputs import explanation_entry, png_entry
from transferlab.serve.workers import RunWorker, explained, with_batch_info

KIND = "segmenter"


class SegmentWorker(RunWorker):
    """A segment run applied to one uint8 H x W x 3 image (any size, at its own resolution): the
    class-index mask and the overlay, as ``segment apply`` writes them."""

    def setup(self, device: str) -> None:
        import torch

        from transferlab.engine.performance import for_inference
        from transferlab.options.segment import SegmentOptions
        from transferlab.tasks.segment import load_segmenter

        torch.set_grad_enabled(False)
        self.model, self.spec = load_segmenter(self.run_dir, torch.device(device))
        self.performance = for_inference(torch.device(device), SegmentOptions.cpu_defaults)

    def predict_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import torch

        from transferlab.tasks.segment.inference import predict_logits
        from transferlab.tasks.segment.report import overlay

        outputs, spec = [], self.spec
        for request in requests:  # sizes differ between requests, so each runs on its own
            image = torch.from_numpy(request["pixels"]).permute(2, 0, 1)
            mask = predict_logits(self.model, image, spec["predict_size"], self.performance).argmax(0)
            shown = overlay(image, mask, spec["colours"], int(spec["ignore_index"]))
            outputs.append({"mask": mask.numpy().astype(np.uint8), "overlay": shown})
            if request.get("explain"):
                self.explainer, found = explained(self.run_dir, self.explainer, [request["pixels"]])
                outputs[-1]["explanation"] = found[0]
        return with_batch_info(outputs, len(requests))


def describe(run: RunInfo) -> dict[str, Any]:
    _, spec = load_run(SEGMENTER, run.path)
    return {"backbone": spec["backbone"], "decoder": spec["decoder"], "classes": spec["classes"],
            "colours": spec["colours"], "img_size": spec["img_size"]}  # fmt: skip


async def segment(api: Any, name: str, request: Any) -> Response:
    """One image in: its overlay as a PNG (format=png), or the class-index mask (format=mask);
    several images or format=json: JSON with both as base64 PNGs and each class's share."""
    served = api.model(name, KIND)
    got = await api.images(request)
    wanted = got.options.get("format", "png")
    if wanted not in ("png", "mask", "json"):
        raise ApiError(422, f"format {wanted!r} is not png, mask or json", "use format=png, mask or json")
    explain = bool_option(got.options, "explain")  # maps come in JSON, whatever the format
    outputs = await asyncio.gather(*[
        api.dispatch[name]({"pixels": np.array(image), "explain": explain}) for image in got.images
    ])  # fmt: skip
    if len(outputs) == 1 and wanted != "json" and not explain:
        picture = outputs[0]["overlay" if wanted == "png" else "mask"]
        return Response(png_bytes(Image.fromarray(picture)), media_type="image/png")
    classes = served.details["classes"]
    entries = []
    for file, output in zip(got.names, outputs):
        counts = np.bincount(output["mask"].ravel(), minlength=len(classes))[: len(classes)] / output["mask"].size
        entry = png_entry(file, png_bytes(Image.fromarray(output["overlay"])))
        entries.append({**entry, "mask_png_base64": base64.b64encode(png_bytes(Image.fromarray(output["mask"])))
                        .decode(), "classes": dict(zip(classes, np.round(counts, 4).tolist()))})  # fmt: skip
        if "explanation" in output:
            entries[-1]["explanation"] = explanation_entry(output["explanation"], classes)
    return JSONResponse({"model": name, "images": entries})


SERVING = {
    KIND: Serving(
        SegmentWorker,
        describe,
        batched=False,
        routes=(
            Route(("POST",), "/models/{name}/segment", segment, "Segmenter: the overlay, the class mask, or JSON"),
        ),
    )
}
