"""The README's translation figure: for one task of `translate_transfer.py` (seed 0), the same
held-out images as input | scratch | ImageNet | ae:RUN | target, one row each.

    .venv/bin/python benchmarks/translate_figure.py colorize docs/images/translate-colorize.png
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TRANSFERLAB_OFFLINE", "1")
os.environ.setdefault("TRANSFERLAB_QUIET", "1")


def main(task: str, out: Path, root: Path = Path("runs/benchmarks/translate"), count: int = 6) -> None:
    import torch

    from transferlab.io import save_grid
    from transferlab.options.translate import TranslateOptions
    from transferlab.tasks.translate import load_translator
    from transferlab.tasks.translate.data import load_pairs

    folder = root / f"{task}-seed0"
    runs = {name: folder / name for name in ("scratch", "imagenet")}
    runs["ae"] = next(p for p in folder.iterdir() if p.name.startswith("ae-"))
    spec = json.loads((runs["imagenet"] / "run.json").read_text())
    opts = TranslateOptions(**spec["model"]["options"])
    photos = spec["data"].removeprefix("folder ")
    pairs = load_pairs(photos, opts.task, opts.img_size, opts.seed, opts.val_fraction)
    x, y = pairs.held_out(opts.task, opts, count)
    columns = [x[:, :3]]
    for run in runs.values():
        net, _ = load_translator(run)
        with torch.no_grad():
            columns.append(net(x).clamp(0, 1))
    columns.append(y)
    rows = [image for i in range(count) for image in (column[i] for column in columns)]
    rows = [torch.nn.functional.interpolate(r[None], scale_factor=2, mode="nearest")[0] for r in rows]  # visible
    save_grid(torch.stack(rows), out, nrow=len(columns), padding=2, pad_value=1.0)
    print(f"{out}: columns input | scratch | imagenet | ae | target")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
