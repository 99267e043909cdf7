"""Image-to-image quality on held-out images: PSNR and SSIM (torchmetrics) and a perceptual
distance on the offline ImageNet EfficientNet-Lite0 features (called "Lite0 perceptual distance"
wherever it is reported, so nobody takes it for LPIPS)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from transferlab import backbones
from transferlab.engine.performance import for_inference
from transferlab.metrics import register

if TYPE_CHECKING:
    from transferlab.engine.performance import Performance


class Lite0Distance(nn.Module):
    r"""LPIPS-shaped distance on frozen Lite0 features (no learned weights): for the first
    ``stages`` stages :math:`l`, with channel-normalised features :math:`\hat\phi_l`,

    .. math:: d(a, b) = \frac{1}{L} \sum_l \operatorname{mean}_{h,w} \lVert \hat\phi_l(a) - \hat\phi_l(b) \rVert_2^2

    Inputs are RGB in [0, 1]; the result is per image (N,). Differentiable: usable as a loss."""

    def __init__(self, stages: int = 4) -> None:
        super().__init__()

        built = backbones.create("tf_efficientnet_lite0", num_classes=0)
        self.net = built.model.eval().requires_grad_(False)
        self.normalize = backbones.Normalize(built.data_config["mean"], built.data_config["std"])
        self.stages = stages

    def train(self, mode: bool = True) -> Lite0Distance:
        super().train(mode)
        self.net.eval()  # frozen: BatchNorm statistics stay ImageNet's
        return self

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.net.forward_intermediates(self.normalize(x), indices=5, intermediates_only=True)
        return [f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-8) for f in feats[: self.stages]]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        pairs = zip(self.features(a), self.features(b))
        return torch.stack([(fa - fb).pow(2).sum(dim=1).mean(dim=(1, 2)) for fa, fb in pairs]).mean(dim=0)


_distance: dict[str, Lite0Distance] = {}


@register("image_quality")
def image_quality(
    output: torch.Tensor, target: torch.Tensor, batch_size: int = 64, performance: Performance | None = None
) -> dict[str, Any]:
    """PSNR (dB), SSIM and the Lite0 perceptual distance of ``output`` against ``target`` (RGB in
    [0, 1], N x 3 x H x W), each the mean over images. Taken ``batch_size`` images at a time (SSIM
    of a whole set at once held five float copies of it: gigabytes for a few thousand images);
    the Lite0 network runs in ``performance``'s memory format (default: the rule for the CPU)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    # a score compared across runs and devices: 32-bit always, in the memory format the run chose
    performance = replace(performance or for_inference("cpu"), precision="32-true")
    distance = _distance.setdefault("lite0", Lite0Distance())
    psnr, ssim, lite0 = [], [], []
    with performance.inference(distance):
        for o, t in zip(output.split(batch_size), target.split(batch_size)):
            o, t = o.float().clamp(0, 1).cpu(), t.float().cpu()
            psnr.append(peak_signal_noise_ratio(o, t, data_range=1.0, reduction="none", dim=(1, 2, 3)))
            ssim.append(structural_similarity_index_measure(o, t, data_range=1.0, reduction="none").reshape(-1))
            lite0.append(distance(performance.inputs(o), performance.inputs(t)).float())
    psnr, ssim, lite0 = torch.cat(psnr), torch.cat(ssim), torch.cat(lite0)
    return {
        "psnr": float(psnr.clamp(max=100).mean()),  # identical images: 100 dB, not inf
        "ssim": float(ssim.mean()),
        "lite0_distance": float(lite0.mean()),
        "images": len(output),
    }
