"""How the server serves classifier runs (classify's, adapt's and distill's): a worker that turns
crops into logits (torch, or the exported ONNX / int8 model with ``serve --runtime``), the top-k
route, and the Open Inference Protocol (KServe v2) routes of one model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from transferlab.errors import UsageError
from transferlab.options.serve import RUNTIMES
from transferlab.registry import load_run
from transferlab.runs import CLASSIFIER, RunInfo
from transferlab.serve.inputs import (
    ApiError,
    base64_uploads,
    bool_option,
    check_count,
    decode_images,
    for_explaining,
    int_option,
    read_json_object,
)
from transferlab.serve.kinds import Route, Serving
from transferlab.serve.outputs import explanation_entry
from transferlab.serve.workers import RunWorker, explained, with_batch_info

KIND = "classifier"


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
        from transferlab.runs import read_run

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
        return with_batch_info(outputs, len(logits))


def describe(run: RunInfo) -> dict[str, Any]:
    built = load_run(CLASSIFIER, run.path)
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in built.data_config.items()}
    return {
        "backbone": run.model["backbone"],
        "input_size": config["input_size"],
        "classes": run.class_names,
        "preprocessing": config,
    }


def onnx_model(served: Any) -> Path:
    """The run's ``model.onnx`` (as ``transferlab export`` writes it), exported when missing or older
    than the weights."""
    from transferlab.tasks.export import current_onnx

    return current_onnx(served.run.path)


def int8_model(served: Any) -> Path:
    """The run's int8 model, as ``transferlab export RUN --quantize int8`` wrote and checked it."""
    from transferlab.tasks.quantize import SUFFIXES

    path = served.run.path / f"model{SUFFIXES['int8']}"
    if not path.is_file():
        raise UsageError(f"{served.run.path} has no int8 model ({path.name})",
                         f"make it first: transferlab export {served.run.path} --quantize int8")  # fmt: skip
    if path.stat().st_mtime < served.run.weights_path.stat().st_mtime:
        raise UsageError(f"{path} is older than the run's weights",
                         f"quantize again: transferlab export {served.run.path} --quantize int8")  # fmt: skip
    return path


def worker_options(served: Any, opts: Any) -> dict[str, Any]:
    """``serve --runtime``: torch, the exported ONNX model, or the int8 one."""
    onnx = {"torch": None, "onnx": onnx_model, "onnx-int8": int8_model}[opts.runtime]
    return {"runtime": opts.runtime, "onnx_path": str(onnx(served)) if onnx else None}


# ---------------------------------------------------------------------------------------- routes


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


async def classify(api: Any, served: Any, images: list[Image.Image], explain: bool = False) -> dict[str, Any]:
    """The worker's logits for whole images, resized and cropped as the run's evaluation does."""
    from transferlab.data.transforms import split_eval_transform

    # the image half of the run's eval transform (see data.transforms), made once per model
    to_pixels = api.memo(("to_pixels", served.name), lambda: split_eval_transform(served.details["preprocessing"])[0])
    pixels = await run_in_threadpool(lambda: np.stack([to_pixels(image) for image in images]))
    request: dict[str, Any] = {"pixels": pixels}
    if explain:  # the whole images, not the crops: a map shows the whole picture
        request["explain"] = await run_in_threadpool(lambda: [for_explaining(image) for image in images])
    return await api.dispatch[served.name](request)


async def predict(api: Any, name: str, request: Any) -> dict[str, Any]:
    """Multipart files (any field name) or JSON {"images": [base64, ...]}; option topk (default 5)."""
    served = api.model(name, KIND)
    classes = served.details["classes"]
    got = await api.images(request)
    topk = int_option(got.options, "topk", min(5, len(classes)), 1, len(classes))
    explain = bool_option(got.options, "explain")
    output = await classify(api, served, got.images, explain)
    probabilities = softmax(output["logits"])
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :topk]
    predictions = [
        {"file": file, "top": [{"label": classes[i], "index": int(i), "probability": float(p[i])} for i in row]}
        for file, row, p in zip(got.names, top, probabilities)
    ]
    for prediction, found in zip(predictions, output.get("explanations", [])):
        prediction["explanation"] = explanation_entry(found, classes)
    return {"model": name, "predictions": predictions}


async def v2_model_ready(api: Any, name: str, request: Any) -> dict[str, Any]:
    api.model(name, KIND)
    return {"name": name, "ready": await run_in_threadpool(api.ready)}


async def v2_metadata(api: Any, name: str, request: Any) -> dict[str, Any]:
    served = api.model(name, KIND)
    classes = len(served.details["classes"])
    return {
        "name": name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx" if api.opts.runtime.startswith("onnx") else "pytorch_torch",
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


async def v2_infer(api: Any, name: str, request: Any) -> dict[str, Any]:
    """Inputs: FP32 N x 3 x H x W normalised images (as the exported ONNX model takes), or
    BYTES base64 image files. Outputs: logits and probabilities (or those named in "outputs")."""
    served = api.model(name, KIND)
    body = await read_json_object(request)
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise ApiError(400, "the request needs exactly one entry in 'inputs'", "see GET /v2/models/{name}")
    tensor = inputs[0]
    if tensor.get("datatype") == "BYTES":
        uploads = base64_uploads(tensor.get("data") or [], "data")
        check_count(uploads, api.opts.max_images)
        output = await classify(api, served, await decode_images(uploads))
    else:
        output = await api.dispatch[name]({"tensor": v2_tensor(served, tensor, api.opts.max_images)})
    logits = output["logits"]
    wanted = [o.get("name") for o in body.get("outputs") or []] or ["logits", "probabilities"]
    values = {"logits": logits, "probabilities": softmax(logits)}
    unknown = sorted(set(wanted) - set(values))
    if unknown:
        raise ApiError(400, f"unknown outputs {unknown}", "ask for logits and/or probabilities")
    result = {"model_name": name, "model_version": "1", "outputs": [v2_output(n, values[n]) for n in wanted]}
    return {**result, **({"id": body["id"]} if "id" in body else {})}


def v2_tensor(served: Any, tensor: dict[str, Any], max_images: int) -> np.ndarray:
    """A KServe v2 FP32 input, checked against the model's input size and the server's limits."""
    expected = served.details["input_size"]
    shape = tensor.get("shape")
    if tensor.get("datatype") != "FP32" or not isinstance(shape, list) or list(shape[1:]) != list(expected):
        raise ApiError(
            400,
            f"input {tensor.get('name')!r} is {tensor.get('datatype')} {shape}; "
            f"expected FP32 [N, {', '.join(map(str, expected))}]",
            "send normalised images as FP32 N x C x H x W, or BYTES base64 image files",
        )
    if not 1 <= int(shape[0]) <= max_images:
        raise ApiError(413, f"{shape[0]} images in one request", f"send 1..{max_images} per request")
    try:
        array = np.asarray(tensor.get("data"), dtype=np.float32).reshape(shape)
    except (TypeError, ValueError):
        raise ApiError(400, f"the data of input {tensor.get('name')!r} does not fill shape {shape}", "") from None
    if not np.isfinite(array).all():
        raise ApiError(400, "the input holds NaN or infinite values", "send finite numbers")
    return array


def v2_output(name: str, values: np.ndarray) -> dict[str, Any]:
    return {"name": name, "datatype": "FP32", "shape": list(values.shape), "data": values.ravel().tolist()}


SERVING = {
    KIND: Serving(
        ClassifierWorker,
        describe,
        batched=True,
        routes=(
            Route(("POST",), "/models/{name}/predict", predict, "Classifier: top-k classes of uploaded images"),
            Route(("GET",), "/v2/models/{name}", v2_metadata, "KServe v2: model metadata"),
            Route(("GET",), "/v2/models/{name}/ready", v2_model_ready, "KServe v2: model ready"),
            Route(("POST",), "/v2/models/{name}/infer", v2_infer, "KServe v2: inference"),
        ),
        worker_options=worker_options,
        runtimes=RUNTIMES,
    )
}
