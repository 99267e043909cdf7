"""DCGAN end to end: transferlab against the pytorch/examples recipe, in the same process.

Reference: pytorch/examples' dcgan/main.py recipe (ImageFolder + DataLoader with Resize,
CenterCrop, ToTensor, Normalize; the same 64 px generator and discriminator; BCELoss after a
sigmoid; Adam 2e-4, beta1 0.5; batch 128), one epoch over the images, timed from start (dataset
scan) to the last step. transferlab: `gan.train(arch="dcgan")` with the same networks, batch and
step count, no augmentation, no sampling or FID, timed the same way (its images are decoded once
and kept on the device).

    .venv/bin/python benchmarks/gan_dcgan.py [--images 45000] [--workers 8]    # GPU: one epoch of CIFAR-10
    .venv/bin/python benchmarks/gan_dcgan.py --images 1024 --workers 2         # CPU
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

os.environ.setdefault("TRANSFERLAB_QUIET", "1")

from common import cifar10_folder
from transferlab.tasks import gan
from transferlab.tasks.gan.networks import DCGANDiscriminator, DCGANGenerator, dcgan_init


def subset_folder(root: Path, images: int, out: Path) -> Path:
    """The first ``images`` training images (all classes), linked into one folder tree."""
    files = sorted((root / "train").rglob("*.jpg"))
    step = max(1, len(files) // images)
    for f in files[::step][:images]:
        target = out / f.parent.name / f.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(f)
    return out


def reference_epoch(folder: Path, batch: int, workers: int, device: torch.device) -> tuple[float, int]:
    import torchvision.datasets as dset
    import torchvision.transforms as T

    start = time.perf_counter()
    dataset = dset.ImageFolder(
        str(folder), T.Compose([T.Resize(64), T.CenterCrop(64), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)])
    )
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers)
    G, D = DCGANGenerator(64, 3).to(device), DCGANDiscriminator(64, 3).to(device)
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    steps = 0
    for real, _ in loader:
        real = real.to(device)
        n = real.shape[0]
        ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)
        D.zero_grad()
        err_real = criterion(torch.sigmoid(D(real)), ones)
        err_real.backward()
        fake = G(torch.randn(n, 100, device=device))
        err_fake = criterion(torch.sigmoid(D(fake.detach())), zeros)
        err_fake.backward()
        opt_d.step()
        G.zero_grad()
        err_g = criterion(torch.sigmoid(D(fake)), ones)
        err_g.backward()
        opt_g.step()
        err_real.item(), err_fake.item(), err_g.item()  # the example prints these every step
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, steps


def transferlab_epoch(folder: Path, batch: int, steps: int, out: Path, compile_: bool) -> float:
    start = time.perf_counter()
    gan.train(
        folder, arch="dcgan", img_size=64, batch_size=batch, steps=steps, augment="none", xflip=False,
        eval_every=0, sample_every=0, checkpoint_every=steps, out=out, compile=compile_,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=45000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # Library imports are paid once per process by any tool; take them out of both timings.
    import torchvision  # noqa: F401

    from transferlab.engine.fabric import fabric_class

    fabric_class()
    with tempfile.TemporaryDirectory() as tmp:
        root = cifar10_folder(Path(tmp) / "cache")
        folder = subset_folder(root, args.images, Path(tmp) / "subset") if args.images < 45000 else root / "train"
        ref_seconds, steps = reference_epoch(folder, args.batch, args.workers, device)
        ours = transferlab_epoch(folder, args.batch, steps, Path(tmp) / "run", args.compile)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; {args.images} images at 64 px, batch {args.batch}, {steps} steps")
    print(f"pytorch/examples DCGAN recipe: {ref_seconds:.1f} s ({steps * args.batch / ref_seconds:.0f} img/s)")
    print(f"transferlab gan (dcgan):       {ours:.1f} s ({steps * args.batch / ours:.0f} img/s)")
    print(f"speed-up, end to end: {ref_seconds / ours:.2f}x")


if __name__ == "__main__":
    main()
