"""`transferlab distill` against the plain loop a user would write with torchdistill's KD loss:
the same teacher run (EfficientNet-Lite2 fine-tuned as `benchmarks/distill.py` does: `teacher_run`), the same student
(Lite0 from the same ImageNet weights), data (CIFAR-10, 200 labelled images a class), input size,
epochs and KD settings (T 4, alpha 0.5); test accuracy on the same 1,000 unseen images and wall
time from the call to the trained student, over seeds, the two sides alternating.

The plain loop: torchvision ``ImageFolder`` with transforms v2 (a random resized crop of the same
scale range and a flip), two loader workers, AdamW (lr 1e-3, weight decay 0.05) on a per-step cosine
schedule, ``torchdistill.losses.mid_level.KDLoss`` on the logits, the teacher in eval mode under
``no_grad``; the best epoch on the validation images kept, as `distill` keeps it.

``--alone``: the bar for classify's defaults instead: the same plain loop with cross-entropy and no
teacher (timm's model, nothing else) against ``transferlab classify`` with its defaults, the same
student, data, input size and epochs.

torchdistill is not a transferlab dependency: ``.venv/bin/pip install torchdistill`` (1.1.5 takes
the torch already installed), then

    cd benchmarks && ../.venv/bin/python distill_vs_torchdistill.py [--seeds 0,1,2] [--epochs 10] [--alone]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_QUIET", "1")
os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")

import torch

from common import mean_spread
from distill import teacher_run

STUDENT = "tf_efficientnet_lite0"
TEMPERATURE, ALPHA = 4.0, 0.5


def loaders(data: Path, size: int, mean, std, seed: int):
    from torchvision import datasets
    from torchvision.transforms import v2

    def pipeline(*first):
        return v2.Compose([*first, v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])

    train_tf = pipeline(v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True), v2.RandomHorizontalFlip())
    eval_tf = pipeline(v2.Resize(size, antialias=True), v2.CenterCrop(size))
    generator = torch.Generator().manual_seed(seed)

    def loader(part: str, transform, train: bool):
        folder = datasets.ImageFolder(str(data / part), transform=transform)
        return torch.utils.data.DataLoader(folder, batch_size=64, shuffle=train, drop_last=train, num_workers=2,
                                           persistent_workers=True, generator=generator)  # fmt: skip

    return loader("train", train_tf, True), loader("val", eval_tf, False), loader("test", eval_tf, False)


def accuracy(model: torch.nn.Module, loader) -> float:
    model.eval()
    correct = seen = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            seen += len(y)
    return correct / seen


def plain_torchdistill(teacher_run: Path | None, data: Path, size: int, epochs: int, seed: int) -> float:
    """The student's test accuracy after the plain loop (see the module's docstring); without a
    teacher, the loop with cross-entropy alone."""
    from transferlab import backbones

    torch.manual_seed(seed)
    student, config, _ = backbones.create(STUDENT, pretrained=True, num_classes=10, img_size=size)
    train, val, test = loaders(data, size, config["mean"], config["std"], seed)
    if teacher_run is None:
        cross_entropy = torch.nn.CrossEntropyLoss()
        teacher = None

        def criterion(student_io: dict, _: dict, y: torch.Tensor) -> torch.Tensor:
            return cross_entropy(student_io["logits"]["output"], y)
    else:
        from torchdistill.losses.mid_level import KDLoss

        teacher = backbones.load_run_model(teacher_run).model.eval()
        criterion = KDLoss("logits", "output", "logits", "output", temperature=TEMPERATURE, alpha=ALPHA)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3, weight_decay=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * len(train))
    best, best_state = -1.0, None
    for _ in range(epochs):
        student.train()
        for x, y in train:
            with torch.no_grad():
                teacher_logits = teacher(x) if teacher is not None else None
            loss = criterion({"logits": {"output": student(x)}}, {"logits": {"output": teacher_logits}}, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        score = accuracy(student, val)
        if score > best:
            best, best_state = score, copy.deepcopy(student.state_dict())
    student.load_state_dict(best_state)
    return accuracy(student, test)


def ours(teacher_run: Path | None, folder: Path, data: Path, size: int, epochs: int, seed: int, out: Path) -> float:
    """``distill`` from the teacher, or without one ``classify`` alone, with their defaults."""
    from transferlab.tasks import classify, distill

    if teacher_run is None:
        classify.train(str(folder), out=out, backbone=STUDENT, img_size=size, epochs=epochs, seed=seed)
    else:
        distill.train(str(teacher_run), str(folder), out=out, backbone=STUDENT, img_size=size, epochs=epochs,
                      seed=seed, temperature=TEMPERATURE, alpha=ALPHA)  # fmt: skip
    return float(classify.evaluate(out, str(data / "test"))["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--img-size", type=int, default=64)
    parser.add_argument("--alone", action="store_true", help="no teacher: classify against the plain CE loop")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    data, folder, teacher = teacher_run("cifar10", args.epochs, args.img_size)
    runs, teacher = folder.parent, None if args.alone else teacher
    name = "vs-timm" if args.alone else "vs-torchdistill"
    found: dict[str, list[tuple[float, float]]] = {}
    for seed in map(int, args.seeds.split(",")):
        for side in ("plain loop", "transferlab") if seed % 2 else ("transferlab", "plain loop"):
            started = time.perf_counter()
            if side == "transferlab":
                out = runs / f"{name}-e{args.epochs}-{args.img_size}-seed{seed}"
                score = ours(teacher, folder, data, args.img_size, args.epochs, seed, out)
            else:
                score = plain_torchdistill(teacher, data, args.img_size, args.epochs, seed)
            seconds = time.perf_counter() - started
            found.setdefault(side, []).append((score, seconds))
            print(json.dumps({"side": side, "seed": seed, "test_accuracy": score, "seconds": round(seconds)}),
                  flush=True)  # fmt: skip
    what = "Lite0 alone (cross-entropy)" if args.alone else "Lite2 -> Lite0 KD"
    print(f"\n{what} on CIFAR-10 (200 a class), {args.epochs} epochs at {args.img_size} px")
    print("| student | test accuracy | seeds | wall s |\n| --- | --- | --- | --- |")
    for side, rows in found.items():
        print(f"| {side} | {mean_spread([a for a, _ in rows])} | {len(rows)} | "
              f"{statistics.mean(s for _, s in rows):.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
