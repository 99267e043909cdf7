"""How the server serves GAN runs: a worker that draws samples or latent interpolations for a
seed (and class), and the routes that answer with a PNG grid or JSON."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from transferlab.registry import load_run
from transferlab.runs import GAN, RunInfo
from transferlab.serve.inputs import ApiError, int_option, png_bytes, read_json_object
from transferlab.serve.kinds import Route, Serving
from transferlab.serve.outputs import as_image, grid, png_entry
from transferlab.serve.workers import RunWorker, with_batch_info

KIND = "gan"


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
        return with_batch_info(outputs, sum(len(o["pixels"]) for o in outputs))


def describe(run: RunInfo) -> dict[str, Any]:
    import torch

    _, spec = load_run(GAN, run.path, torch.device("cpu"))
    keys = ("arch", "img_size", "channels", "z_dim")
    return {**{k: spec[k] for k in keys}, "classes": run.class_names if spec["num_classes"] else []}


async def gan_options(served: Any, request: Any) -> dict[str, Any]:
    """The query's (and a POST body's) options, the class given by name or index, and the seed."""
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


async def generate(api: Any, name: str, request: Any) -> Response:
    """n images for a seed (and class) as a PNG grid, or JSON base64 PNGs with format=json."""
    options = await gan_options(api.model(name, KIND), request)
    n = int_option(options, "n", 16, 1, api.opts.max_images)
    output = await api.dispatch[name]({"op": "sample", "n": n, "seed": options["seed"], "label": options["label"]})
    if options.get("format", "png") == "json":
        pngs = [png_bytes(as_image(p)) for p in output["pixels"]]
        return JSONResponse({"model": name, "seed": options["seed"], "images": [png_entry("", p) for p in pngs]})
    return Response(png_bytes(grid(output["pixels"], columns=min(8, n))), media_type="image/png")


async def interpolate(api: Any, name: str, request: Any) -> Response:
    """rows x steps images between pairs of random latents, as one PNG (a row per pair)."""
    options = await gan_options(api.model(name, KIND), request)
    rows = int_option(options, "rows", 4, 1, 16)
    steps = int_option(options, "steps", 8, 2, 16)
    payload = {"op": "interpolate", "rows": rows, "steps": steps, "seed": options["seed"], "label": options["label"]}
    output = await api.dispatch[name](payload)
    return Response(png_bytes(grid(output["pixels"], columns=steps)), media_type="image/png")


SERVING = {
    KIND: Serving(
        GanWorker,
        describe,
        batched=False,  # answers one request at a time, on purpose
        routes=(
            Route(("GET", "POST"), "/models/{name}/generate", generate, "GAN: a grid of samples"),
            Route(("GET", "POST"), "/models/{name}/interpolate", interpolate, "GAN: latent interpolations"),
        ),
    )
}
