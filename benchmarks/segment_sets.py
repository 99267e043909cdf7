"""Many-class segmentation sets assembled from real images in ../shared/data, written once into the
benchmark cache as ``train/`` and ``val/`` folders of ``images/`` (JPEG) + ``masks/`` (class-index PNG).
Held-out scenes sit on background photos that training never saw and use held-out objects.

- ``scenes``: CIFAR-10 objects (real 32x32 photos, scaled and cut out as ellipses) on crops of the
  kangaroo set's real photos; 11 classes (background + the 10 CIFAR classes). ``sizes`` is the
  object side relative to the scene's height: (0.25, 0.5) are large objects, (0.07, 0.16) small ones.
- ``digits``: MNIST digits drawn in random colours on the same photos at 8-25% of the height, the
  mask the digit's own strokes (pixels of the MNIST image above half intensity, scaled with it):
  thin structures a few pixels wide, like poles and wires; 11 classes (background + ten digits).

With ``zipf`` the classes are drawn with frequencies 1/(rank) in a fixed seeded order, so some
classes are rare, as in real street or indoor scenes.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

from common import SHARED, cifar10_folder

SCENE_CLASSES = ("background", "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")  # fmt: skip
DIGIT_CLASSES = ("background", "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def kangaroo_photos(cache: Path) -> list[Path]:
    target = cache / "kangaroo"
    if not (target / "images").is_dir():
        with tarfile.open(SHARED / "kangaroo.tar.gz") as archive:
            archive.extractall(cache, filter="data")
    return sorted((target / "images").glob("*.jpg"))


def _label_weights(rng, classes: int, zipf: bool):
    import numpy as np

    if not zipf:
        return np.full(classes, 1 / classes)
    weights = 1 / np.arange(1, classes + 1)[rng.permutation(classes)]
    return weights / weights.sum()


def _background(photo_path: Path, rng, height: int, width: int):
    from PIL import Image

    photo = Image.open(photo_path).convert("RGB")
    scale = max(width / photo.width, height / photo.height) * rng.uniform(1.0, 1.5)
    photo = photo.resize((round(photo.width * scale) + 1, round(photo.height * scale) + 1), Image.BICUBIC)
    x, y = rng.integers(photo.width - width + 1), rng.integers(photo.height - height + 1)
    return photo.crop((x, y, x + width, y + height)), Image.new("L", (width, height), 0)


def _write(root: Path, n_train: int, n_val: int, cache: Path, seed: int, paint: Callable, n_test: int = 0) -> Path:
    """``paint(rng, split, scene, mask)`` draws the objects of one scene on its background; a
    ``test/`` split (if ``n_test``) is drawn like ``val/``, from held-out photos and objects."""
    import numpy as np
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # the kangaroo set has one truncated JPEG: a fine background
    if (root / "done").is_file():
        return root
    rng = np.random.default_rng(seed)
    photos = kangaroo_photos(cache)
    cut = int(len(photos) * 0.8)  # held-out scenes sit on photos training never saw
    parts = (("train", n_train, photos[:cut]), ("val", n_val, photos[cut:]), ("test", n_test, photos[cut:]))
    for split, count, backgrounds in (part for part in parts if part[1]):
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(count):
            height, width = paint.size
            scene, mask = _background(backgrounds[rng.integers(len(backgrounds))], rng, height, width)
            paint(rng, "train" if split == "train" else "val", scene, mask)
            scene.save(root / split / "images" / f"{i:04d}.jpg", quality=92)
            mask.save(root / split / "masks" / f"{i:04d}.png")
    (root / "done").touch()
    return root


def scenes(
    cache: Path, n_train: int, n_val: int, height: int, width: int, seed: int = 0,
    sizes: tuple[float, float] = (0.25, 0.5), count: tuple[int, int] = (2, 6), zipf: bool = False, n_test: int = 0,
) -> Path:  # fmt: skip
    """CIFAR-10 objects on photos (see the module's doc)."""
    from PIL import Image, ImageDraw

    cifar = cifar10_folder(cache)
    objects = {split: [sorted((cifar / split / name).glob("*.jpg")) for name in SCENE_CLASSES[1:]]
               for split in ("train", "val")}  # fmt: skip
    shape_tag = (
        "" if (sizes, count, zipf) == ((0.25, 0.5), (2, 6), False) else f"-{sizes[0]}-{sizes[1]}-{count[1]}{'z' * zipf}"
    )
    root = cache / f"scenes-{n_train}-{n_val}{f'-{n_test}' * bool(n_test)}-{height}x{width}-seed{seed}{shape_tag}"
    weights = {}

    def paint(rng, split: str, scene, mask) -> None:
        if zipf:
            weights.setdefault("p", _label_weights(rng, len(SCENE_CLASSES) - 1, zipf))
        for _ in range(rng.integers(count[0], count[1] + 1)):
            if zipf:
                label = int(rng.choice(len(SCENE_CLASSES) - 1, p=weights["p"])) + 1
            else:  # the draws of the first version of these scenes (BENCHMARKS.md's older tables)
                label = int(rng.integers(1, len(SCENE_CLASSES)))
            files = objects[split][label - 1]
            side = max(8, int(rng.uniform(*sizes) * height))
            thing = Image.open(files[rng.integers(len(files))]).convert("RGB").resize((side, side), Image.BICUBIC)
            outline = Image.new("L", (side, side), 0)
            ImageDraw.Draw(outline).ellipse((0, 0, side - 1, side - 1), fill=255)
            at = (int(rng.integers(width - side + 1)), int(rng.integers(height - side + 1)))
            scene.paste(thing, at, outline)
            mask.paste(label, (*at, at[0] + side, at[1] + side), outline)

    paint.size = (height, width)
    return _write(root, n_train, n_val, cache, seed, paint, n_test)


def digits(cache: Path, n_train: int, n_val: int, height: int, width: int, seed: int = 0, n_test: int = 0) -> Path:
    """MNIST digits drawn on photos, the mask their strokes (see the module's doc)."""
    import numpy as np
    from PIL import Image

    archive = np.load(SHARED / "digits-mnist-usps.npz")
    pools = {"train": (archive["mnist_train_x"], archive["mnist_train_y"]),
             "val": (archive["mnist_val_x"], archive["mnist_val_y"])}  # fmt: skip
    root = cache / f"digits-{n_train}-{n_val}{f'-{n_test}' * bool(n_test)}-{height}x{width}-seed{seed}"
    weights = {}

    def paint(rng, split: str, scene, mask) -> None:
        images, labels = pools[split]
        weights.setdefault("p", _label_weights(rng, 10, True))
        for _ in range(rng.integers(3, 11)):
            digit = int(rng.choice(10, p=weights["p"]))
            pick = rng.choice(np.flatnonzero(labels == digit))
            side = max(16, int(rng.uniform(0.08, 0.25) * height))
            ink = Image.fromarray(images[pick]).resize((side, side), Image.BICUBIC)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            at = (int(rng.integers(width - side + 1)), int(rng.integers(height - side + 1)))
            scene.paste(Image.new("RGB", (side, side), colour), at, ink)
            strokes = Image.fromarray(((np.asarray(ink) > 127) * 255).astype(np.uint8))
            mask.paste(digit + 1, (*at, at[0] + side, at[1] + side), strokes)

    paint.size = (height, width)
    return _write(root, n_train, n_val, cache, seed, paint, n_test)


#: The sets of the factor study and the parity benchmark: name -> (builder, class names).
SETS: dict[str, tuple[Callable[..., Path], tuple[str, ...]]] = {
    "scenes-large": (scenes, SCENE_CLASSES),
    "scenes-small": (
        lambda cache, *a, **k: scenes(cache, *a, sizes=(0.07, 0.16), count=(4, 12), zipf=True, **k),
        SCENE_CLASSES,
    ),
    "digits": (digits, DIGIT_CLASSES),
}
