"""The model side of the server: one LitServe ``LitAPI`` per served run, running in LitServe's
inference worker processes. Requests arrive here already checked and decoded (see ``inputs``),
so a worker only turns arrays into arrays; LitServe gathers concurrent requests into batches.

Each worker answers one request as a dict of numpy arrays (pickled back by LitServe), and the
first request of every batch also carries the batch's size, for the ``/metrics`` histograms.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import litserve as ls
import numpy as np


def _batch_info(outputs: list[dict[str, Any]], images: int) -> list[dict[str, Any]]:
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


class ClassifierWorker(RunWorker):
    """Logits of a classify run for uint8 N x H x W x 3 crops, normalised here exactly as
    ``transferlab predict`` does (the HTTP process already resized and cropped them)."""

    def __init__(self, run_dir: str, *, runtime: str = "torch", onnx_path: str | None = None, **lit: Any) -> None:
        super().__init__(run_dir, **lit)
        self.runtime, self.onnx_path = runtime, onnx_path

    def setup(self, device: str) -> None:
        import torch

        from transferlab import backbones
        from transferlab.data.transforms import split_eval_transform
        from transferlab.engine.performance import for_inference
        from transferlab.options.classify import ClassifyOptions
        from transferlab.runs import CLASSIFIER, read_run

        torch.set_grad_enabled(False)
        self.device = torch.device(device)
        built = backbones.from_run(read_run(self.run_dir, model_kind=CLASSIFIER))
        self.normalize = split_eval_transform(built.data_config)[1]
        if self.runtime.startswith("onnx"):
            import onnxruntime

            providers = ["CUDAExecutionProvider"] if self.device.type == "cuda" else []
            self.session = onnxruntime.InferenceSession(self.onnx_path, providers=[*providers, "CPUExecutionProvider"])
        else:
            # the rule training, evaluate and predict follow (channels_last: 2.5x at batch 1 on 2 CPU cores)
            self.performance = for_inference(self.device, ClassifyOptions.cpu_defaults)
            self.model = self.performance.prepare(built.model.eval().to(self.device))

    def logits(self, x: Any) -> np.ndarray:

        if self.runtime.startswith("onnx"):
            return self.session.run(None, {"images": x.numpy()})[0].astype(np.float32)
        with self.performance.autocast():
            return self.model(self.performance.inputs(x.to(self.device))).float().cpu().numpy()

    def predict_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import torch

        # "pixels": uint8 crops from images; "tensor": already normalised input (the KServe v2 route)
        inputs = [
            self.normalize(torch.from_numpy(r["pixels"])) if "pixels" in r else torch.from_numpy(r["tensor"])
            for r in requests
        ]
        logits = self.logits(torch.cat(inputs))
        sizes = np.cumsum([len(x) for x in inputs])[:-1]
        outputs = [{"logits": part} for part in np.split(logits, sizes)]
        for request, output in zip(requests, outputs):
            if request.get("explain"):  # the map of the class the answer ranks first (of the crop)
                top = [int(i) for i in output["logits"].argmax(1)]
                self.explainer, output["explanations"] = explained(
                    self.run_dir, self.explainer, request["explain"], top
                )
        return _batch_info(outputs, len(logits))


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
        return _batch_info(outputs, len(requests))


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
        return _batch_info(outputs, len(requests))


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
        return _batch_info(outputs, len(requests))


class GanWorker(RunWorker):
    """Samples or latent interpolations of a GAN run, as uint8 N x H x W x C images."""

    def setup(self, device: str) -> None:
        import torch

        from transferlab.tasks.gan import load_generator

        torch.set_grad_enabled(False)
        self.generator, self.spec = load_generator(self.run_dir, torch.device(device))

    def predict_batch(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import torch

        from transferlab.sampling import interpolation_images, sample_images, to_uint8

        outputs = []
        for r in requests:
            rng = torch.Generator().manual_seed(r["seed"])
            if r["op"] == "interpolate":
                images = interpolation_images(self.generator, self.spec, r["rows"], rng, r["steps"], r["label"])
            else:
                images = sample_images(self.generator, self.spec, r["n"], rng, r["label"])
            outputs.append({"pixels": to_uint8(images)})
        return _batch_info(outputs, sum(len(o["pixels"]) for o in outputs))
