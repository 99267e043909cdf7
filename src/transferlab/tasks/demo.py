"""``transferlab demo``: a real transfer gain, measured honestly, offline, in about 3 minutes on 2 CPU cores.

Why this scenario: ImageNet features do not transfer to 8x8 handwritten digits (a linear probe
on EfficientNet-Lite0 features scores below a logistic regression on raw pixels), so the default
demo moves knowledge between two digit domains instead. The source is ``printed-digits`` (digits
rendered from 20 fonts, abundant and free); the target is scikit-learn's handwritten ``digits``
with only a few labelled images per class. The table puts transfer from the source next to
the same network from scratch, next to a raw-pixel logistic regression, and next to the
ImageNet linear probe, so that the report says what does and does not transfer.

With ``--data DATA`` the demo compares scratch, linear and full fine-tuning of the offline
ImageNet EfficientNet-Lite0 on any local dataset instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from transferlab.data import DatasetSplits, load_data

if TYPE_CHECKING:
    from transferlab.tasks.stylize import StylizeResult

DEMO_NETWORK = "resnet10t"  # fast on a CPU; trained from scratch on the source domain
SHOTS = 5
SOURCE_IMAGES = 3000  # the printed-digits training set
SIZE = 32
SOURCE_EPOCHS = 4  # the source reaches 99% validation accuracy
TARGET_EPOCHS = 40  # each target row, scored every 5


def pixel_logistic_regression(splits: DatasetSplits) -> float:
    """Validation accuracy of a logistic regression on raw grey pixels: the no-deep-learning baseline."""
    from sklearn.linear_model import LogisticRegression

    def features(images: Any) -> np.ndarray:
        return np.stack(
            [np.asarray(images.image(i).convert("L"), dtype=np.float32).ravel() / 255 for i in range(len(images))]
        )

    model = LogisticRegression(max_iter=2000, C=1.0).fit(features(splits.train), splits.train.labels)
    return float((model.predict(features(splits.val)) == splits.val.labels).mean())


def digits_demo(out: Path, seed: int = 0) -> list:
    from transferlab.tasks import classify

    common = {"img_size": SIZE, "seed": seed, "batch_size": 32, "label_smoothing": 0.1, "devices": 1}
    source = classify.fit(
        "printed-digits", out=out / "source-printed-digits", backbone=DEMO_NETWORK, strategy="scratch",
        epochs=SOURCE_EPOCHS, lr=2e-3, warmup_epochs=0.5, **{**common, "batch_size": 64},
    )  # fmt: skip
    target = load_data("digits", seed=seed).few_shot(SHOTS, seed)
    target_budget = {"epochs": TARGET_EPOCHS, "eval_every": 5, "warmup_epochs": 2, **common}
    entries = {
        "scratch": {"backbone": DEMO_NETWORK, "strategy": "scratch", "lr": 2e-3, **target_budget},
        "printed->linear": {
            "backbone": DEMO_NETWORK,
            "strategy": "linear",
            "weights": str(source.run_dir),
            "lr": 5e-3,
            **target_budget,
        },
        "printed->full": {
            "backbone": DEMO_NETWORK,
            "strategy": "full",
            "weights": str(source.run_dir),
            "lr": 1e-3,
            "body_lr_mult": 0.3,
            **target_budget,
        },
        "imagenet->linear": {"backbone": "tf_efficientnet_lite0", "strategy": "linear", "lr": 5e-3, **target_budget},
    }
    pixels = pixel_logistic_regression(target)
    extra = [{"strategy": "pixel logistic regression (reference, not a network)", "val accuracy": pixels}]
    intro = (
        f"Target: scikit-learn's handwritten digits, {SHOTS} labelled images per class ({len(target.train)} in all), "
        f"validated on {len(target.val)} held-out images. Source: {SOURCE_IMAGES} printed digits rendered from "
        f"matplotlib's fonts, on which {DEMO_NETWORK} was trained from scratch (source validation accuracy "
        f"{source.val_acc:.1%}). Every network row has the same architecture, split and budget, except "
        f"imagenet->linear, which probes the offline ImageNet EfficientNet-Lite0."
    )
    out_dir = out / "target-handwritten-digits"
    results = classify.compare_entries(
        target, entries, out_dir, intro=intro, extra_rows=extra, note=lambda r: verdict(r, pixels)
    )
    (out_dir / "verdict.txt").write_text(verdict(results, pixels) + "\n")
    return results


def verdict(results: list, pixels: float) -> str:
    """What the numbers show, in plain words (also when transfer does not help)."""
    acc = {r.strategy: r.val_acc for r in results}
    transfer = max(acc["printed->linear"], acc["printed->full"])
    gain = transfer - acc["scratch"]
    # the runs' accuracies are float32, the baseline's float64: one image in 359 is 0.003
    beats = transfer - pixels > 1e-6
    first = (
        f"Transfer from printed digits: {transfer:.1%} vs {acc['scratch']:.1%} from scratch ({gain:+.1%}); "
        f"a raw-pixel logistic regression gets {pixels:.1%}"
        + ("." if beats else ", so here transfer beats scratch but not the simple baseline.")
    )
    imagenet = acc["imagenet->linear"]
    second = f" ImageNet features probed linearly: {imagenet:.1%}" + (
        ", below the pixel baseline: ImageNet features do not carry over to 8x8 digits." if imagenet < pixels else "."
    )
    return first + second


def data_demo(data: str, out: Path, seed: int = 0) -> list:
    from transferlab.tasks import classify

    return classify.compare(
        data, ["scratch", "linear", "full"], out=out, backbone="tf_efficientnet_lite0", epochs=5, img_size=96, seed=seed
    )


def gan_demo(out: Path, seed: int = 0) -> Path:
    """Generation in about a minute: a class-conditional DCGAN on scikit-learn's digits (32 px),
    the CPU recipe of ``gan train`` (DiffAugment, small widths) for GAN_STEPS steps; the report's
    grid shows each column's digit class in turn."""
    from transferlab.tasks import gan

    result = gan.train(
        "digits", conditional=True, arch="dcgan", img_size=32, width=32, steps=GAN_STEPS, batch_size=64,
        eval_every=0, sample_every=GAN_STEPS // 4, checkpoint_every=GAN_STEPS, seed=seed, out=out / "gan-digits",
    )  # fmt: skip
    return result.report


def style_demo(out: Path, style: Path | None = None) -> StylizeResult:
    """Style transfer offline in about 10 s: chelsea the cat (scikit-image) repainted in the
    brushwork of a painting drawn on the spot (``data.brushwork``; no painting may ship), on the
    offline Lite0 features. ``style`` replaces the painting (``benchmarks/demo_style.py`` measures
    the candidates with it)."""
    from PIL import Image
    from skimage import data as skdata

    from transferlab.data.brushwork import swirl_painting
    from transferlab.tasks import stylize

    folder = out / "style"
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(skdata.chelsea()).resize((256, 170), Image.BICUBIC).save(folder / "chelsea.png")
    if style is None:
        style = folder / "swirl-painting.png"
        swirl_painting(256).save(style)
    return stylize.stylize(folder / "chelsea.png", [style], out=folder, size=256, steps=100, multiscale=False)


SECTIONS = ("classify", "gan", "style")
#: Chosen by measurement (BENCHMARKS.md, "The demo"): readable digits within the 3-minute demo.
GAN_STEPS = 800


def run_demo(
    out: str | Path | None = None, data: str | None = None, seed: int = 0, sections: tuple[str, ...] = SECTIONS
) -> tuple[list, Path, dict[str, Path]]:
    """The classification comparison (the main job), then short generation and style sections;
    returns the comparison, its report, and the other sections' reports."""
    from transferlab.runs import default_run_dir

    out_dir = Path(out) if out else default_run_dir("demo", "digits")
    if data:
        return data_demo(data, out_dir, seed), out_dir / "report.html", {}
    results = digits_demo(out_dir, seed)
    extras = {}
    if "gan" in sections:
        extras["gan"] = gan_demo(out_dir, seed)
    if "style" in sections:
        extras["style"] = style_demo(out_dir).report
    return results, out_dir / "target-handwritten-digits" / "report.html", extras
