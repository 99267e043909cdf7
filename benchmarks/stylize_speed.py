"""Style transfer speed: optimisation seconds and feed-forward images/s.

1. Optimisation: transferlab's `stylize` (offline Lite0 features, L-BFGS with line search) at
   --size px for --evals loss evaluations, against the PyTorch tutorial's recipe (VGG19 cut after
   its fifth conv, Gram style losses at conv_1..conv_5, content at conv_4, L-BFGS) for the same
   number of evaluations, in the same process. The tutorial's VGG19 weights need a download, so
   offline the reference runs on randomly initialised VGG19 weights: its timing is the same.
2. Feed-forward: the style network (width 32, 5 residual blocks, as pytorch/examples'
   transformer) at --ff-size px: images/s of a plain fp32 loop, one image at a time, against
   transferlab's batched path (bf16 + channels_last on a GPU).

    .venv/bin/python benchmarks/stylize_speed.py --size 256 --evals 100 --ff-size 256   # CPU
    python benchmarks/stylize_speed.py --size 512 --evals 300 --ff-size 512 --batch 32  # GPU
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data as skdata

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import SHARED
from transferlab.tasks.stylize import stylize
from transferlab.tasks.stylize.transformer import StyleTransformer


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def tutorial_recipe(content: torch.Tensor, style: torch.Tensor, evals: int, device: torch.device) -> float:
    """The PyTorch neural-style tutorial's loop (VGG19, random weights offline), timed."""
    import torchvision

    # The tutorial's layers: style at conv_1..conv_5 (the first five convs), content at conv_4,
    # the network cut after conv_5.
    vgg = torchvision.models.vgg19(weights=None).features[:11].to(device).eval().requires_grad_(False)
    taps_style, tap_content = {0, 2, 5, 7, 10}, 7

    def features(x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        styles, content_f = [], None
        for i, layer in enumerate(vgg):
            x = layer(x)
            if i in taps_style:
                styles.append(x)
            if i == tap_content:
                content_f = x
        return styles, content_f

    def gram(f: torch.Tensor) -> torch.Tensor:
        n, c, h, w = f.shape
        flat = f.view(n * c, h * w)
        return flat @ flat.t() / (n * c * h * w)

    start = time.perf_counter()
    with torch.no_grad():
        style_targets = [gram(f) for f in features(style)[0]]
        content_target = features(content)[1]
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], max_iter=evals, max_eval=evals)

    def closure() -> torch.Tensor:
        with torch.no_grad():
            image.clamp_(0, 1)
        optimizer.zero_grad()
        styles, content_f = features(image)
        loss = 1e6 * sum(F.mse_loss(gram(f), t) for f, t in zip(styles, style_targets))
        loss = loss + F.mse_loss(content_f, content_target)
        loss.backward()
        return loss

    optimizer.step(closure)
    sync(device)
    return time.perf_counter() - start


def feed_forward(size: int, batch: int, device: torch.device, count: int) -> tuple[float, float]:
    model = StyleTransformer(32, 5).to(device).eval()
    x = torch.rand(batch, 3, size, size, device=device)
    with torch.inference_mode():
        model(x[:1])
        sync(device)
        start = time.perf_counter()
        for i in range(count):
            model(x[i % batch : i % batch + 1])
        sync(device)
        plain = count / (time.perf_counter() - start)
        layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format  # as apply_style
        fast = model.to(memory_format=layout)
        xc = x.to(memory_format=layout)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            fast(xc)
            sync(device)
            start = time.perf_counter()
            rounds = max(1, count // batch)
            for _ in range(rounds):
                fast(xc)
            sync(device)
        batched = rounds * batch / (time.perf_counter() - start)
    return plain, batched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--evals", type=int, default=100)
    parser.add_argument("--ff-size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--ff-count", type=int, default=16)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    with tempfile.TemporaryDirectory() as tmp:
        content_path, style_path = Path(tmp) / "content.png", SHARED / "styles" / "starry_night.jpg"
        Image.fromarray(skdata.chelsea()).save(content_path)
        result = stylize(content_path, [style_path], out=Path(tmp) / "out", size=args.size, steps=args.evals,
                         multiscale=False, device=str(device))  # fmt: skip
        ours = result.trace.seconds
        content = torch.from_numpy(skdata.chelsea()).permute(2, 0, 1)[None].float().div(255)
        content = F.interpolate(content, size=(args.size * 300 // 451, args.size), mode="bilinear").to(device)
        style = torch.from_numpy(np.array(Image.open(style_path).convert("RGB")))
        style = F.interpolate(style.permute(2, 0, 1)[None].float().div(255), size=content.shape[-2:]).to(device)
        reference = tutorial_recipe(content, style, args.evals, device)
    print(f"device: {name}")
    print(f"optimisation, {args.size} px, {args.evals} evaluations: transferlab (lite0) {ours:.1f} s, "
          f"tutorial VGG19 recipe {reference:.1f} s ({reference / ours:.2f}x)")  # fmt: skip
    plain, batched = feed_forward(args.ff_size, args.batch, device, args.ff_count)
    print(f"feed-forward, {args.ff_size} px: plain fp32 one at a time {plain:.1f} img/s; "
          f"transferlab batched ({args.batch}) {batched:.1f} img/s ({batched / plain:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
