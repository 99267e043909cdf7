"""The model side of the server: one LitServe ``LitAPI`` per served run, running in LitServe's
inference worker processes. Requests arrive here already checked and decoded (see ``inputs``),
so a worker only turns arrays into arrays; LitServe gathers concurrent requests into batches.
What every worker shares is here; each kind's worker is its task's (``tasks/NAME/serving.py``).

Each worker answers one request as a dict of numpy arrays (pickled back by LitServe), and the
first request of every batch also carries the batch's size, for the ``/metrics`` histograms.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import litserve as ls
import numpy as np


def with_batch_info(outputs: list[dict[str, Any]], images: int) -> list[dict[str, Any]]:
    """The outputs, the first carrying the batch's size (for the ``/metrics`` histograms)."""
    outputs[0].update(batch_requests=len(outputs), batch_images=images)
    return outputs


def explained(
    run_dir: str, subject: Any, images: list[np.ndarray], classes: list[int] | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """Grad-CAM of ``classes`` (else the run's prediction) over each whole image (``transferlab
    explain``'s maps; EigenCAM for detectors, the one method they take): the map blended over the
    image, its peak, the class, for segmenters the uncertainty and for detectors the boxes explained.
    The subject (the run's network, set for maps) is loaded on the first request that asks."""
    import torch
    from PIL import Image

    from transferlab.tasks.explain import heat_overlay, maps_of, peak_of
    from transferlab.tasks.explain.cam import get_method
    from transferlab.tasks.explain.subjects import load_subject

    with torch.enable_grad():  # the workers run with gradients off; the maps need them
        subject = subject or load_subject(run_dir, None, None, None)
        pictures = [Image.fromarray(image) for image in images]
        method = "gradcam" if subject.methods is None or "gradcam" in subject.methods else subject.methods[0]
        maps = maps_of(subject, get_method(method), pictures, classes, progress=False)
    found = []
    for picture, m in zip(pictures, maps):
        entry = {"overlay": heat_overlay(picture, m.heat), "class_index": m.class_index, "score": m.score,
                 "peak": peak_of(m.heat), "method": method}  # fmt: skip
        if m.uncertainty is not None:
            entry["uncertainty"] = heat_overlay(picture, m.uncertainty)
        if m.boxes is not None:
            entry["boxes"] = m.boxes
        found.append(entry)
    return subject, found


class RunWorker(ls.LitAPI):
    """What every worker shares: the run it serves, and requests kept whole inside a batch
    (a request may hold several images, so LitServe's default stacking does not apply)."""

    def __init__(self, run_dir: str, *, api_path: str, max_batch_size: int = 1, batch_timeout: float = 0.0) -> None:
        super().__init__(max_batch_size=max_batch_size, batch_timeout=batch_timeout, api_path=api_path)
        self.run_dir = run_dir
        self.explainer: Any = None  # the network set for maps, loaded when first asked (explained())

    def decode_request(self, request: dict[str, Any]) -> dict[str, Any]:
        return request

    def batch(self, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(inputs)

    def unbatch(self, output: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return output

    def encode_response(self, output: dict[str, Any]) -> dict[str, Any]:
        return output

    def predict(self, x: dict[str, Any] | list[dict[str, Any]]) -> Any:
        # Without batching LitServe passes one request, with batching a list of them.
        if isinstance(x, list):
            return self.predict_batch(x)
        return self.predict_batch([x])[0]

    @abstractmethod
    def predict_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One output dict per request, in order."""
