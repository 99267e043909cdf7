"""Test set-up: an isolated cache, no downloads, no progress bars, and shared helpers."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# `make test` runs the suite in parallel workers (pytest-xdist): each takes its share of the cores,
# and so do the processes its tests start (the variable is read by torch when it loads), or two
# workers of two threads each on two cores run slower than one.
if workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first (``heavy(seconds)``, measured on 2 cores; the rest keep their order):
    pytest-xdist hands tests out in this order, and a worker that draws a two-minute test last
    keeps the run going while the other worker idles."""

    def seconds(item: pytest.Item) -> float:
        marker = item.get_closest_marker("heavy")
        return marker.args[0] if marker else 0.0

    items.sort(key=seconds, reverse=True)


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("transferlab-home")
    # The caller's own settings must not change what a test sees (HF_HUB_OFFLINE, progress, debug).
    names = ("TRANSFERLAB_HOME", "TRANSFERLAB_OFFLINE", "TRANSFERLAB_QUIET", "HF_HUB_OFFLINE", "TRANSFERLAB_DEBUG",
             "TRANSFERLAB_PROGRESS", "TRANSFERLAB_PROGRESS_SECONDS")  # fmt: skip
    saved = {k: os.environ.pop(k, None) for k in names}
    os.environ.update(TRANSFERLAB_HOME=str(home), TRANSFERLAB_OFFLINE="1", TRANSFERLAB_QUIET="1")
    yield home
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's real datasets (../shared/data); their absence is a failure, not a skip."""
    assert SHARED_DATA.is_dir(), f"expected the shared datasets at {SHARED_DATA}"
    return SHARED_DATA


def write_image(
    path: Path, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (24, 20), mode: str = "RGB"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))  # the same pixels in every process
    pixels = np.clip(np.array(color)[None, None, :] + rng.integers(-20, 20, (size[1], size[0], 3)), 0, 255).astype(
        np.uint8
    )
    Image.fromarray(pixels, "RGB").convert(mode).save(path)
    return path


def make_class_folder(root: Path, classes: dict[str, int], ext: str = ".png") -> Path:
    """``root/<class>/<i><ext>`` with ``n`` small images per class, each class its own colour."""
    palette = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (220, 200, 40), (160, 40, 200)]
    for c, (name, n) in enumerate(classes.items()):
        for i in range(n):
            write_image(root / name / f"{i}{ext}", palette[c % len(palette)])
    return root


@pytest.fixture
def cli(capsys: pytest.CaptureFixture):
    """Run the CLI in-process: returns (exit code, stdout, stderr)."""
    from transferlab.cli.main import main

    def invoke(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def assert_user_error(result: tuple[int, str, str], *fragments: str) -> None:
    """Exit code 2, exactly one 'error:' line and one 'hint:' line, no traceback."""
    code, _, err = result
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("warning:", "  "))]
    assert len(lines) == 2 and lines[0].startswith("error:") and lines[1].startswith("hint:"), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def scene(rng: np.random.Generator, size: tuple[int, int] = (40, 56)) -> tuple[np.ndarray, np.ndarray]:
    """A photo-like image with a bright square (class 1) and a dark disc (class 2) on background 0."""
    h, w = size
    image = rng.integers(90, 140, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    top, left = rng.integers(0, h // 2), rng.integers(0, w // 2)
    mask[top : top + h // 3, left : left + w // 3] = 1
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.integers(h // 3, h), rng.integers(w // 3, w)
    mask[(yy - cy) ** 2 + (xx - cx) ** 2 < (h // 6) ** 2] = 2
    image[mask == 1] = (230, 220, 60)
    image[mask == 2] = (30, 40, 160)
    return image, mask


def write_segmentation_set(root: Path, count: int, kind: str = "index", seed: int = 0) -> Path:
    """``root/images`` + ``root/masks`` of ``count`` scenes, masks written as ``kind``."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    colours = np.array([(0, 0, 0), (255, 255, 0), (0, 0, 255)], dtype=np.uint8)
    for i in range(count):
        image, mask = scene(rng)
        Image.fromarray(image).save(root / "images" / f"{i:03d}.jpg")
        if kind == "index":
            Image.fromarray(mask, "L").save(root / "masks" / f"{i:03d}.png")
        elif kind == "palette":
            pal = Image.fromarray(mask, "P")
            pal.putpalette(colours.flatten().tolist())
            pal.save(root / "masks" / f"{i:03d}.png")
        elif kind == "16bit":
            Image.fromarray(mask.astype(np.uint16)).save(root / "masks" / f"{i:03d}.png")
        elif kind == "colour":
            Image.fromarray(colours[mask]).save(root / "masks" / f"{i:03d}.png")
        elif kind == "binary":
            Image.fromarray((mask > 0).astype(np.uint8) * 255, "L").save(root / "masks" / f"{i:03d}.png")
    return root


def scene_boxes(mask: np.ndarray) -> list[tuple[str, list[int]]]:
    """The square's and the disc's boxes (pixel x1 y1 x2 y2, exclusive ends) in a :func:`scene` mask."""
    found = []
    for value, name in ((1, "square"), (2, "disc")):
        ys, xs = np.nonzero(mask == value)
        if len(ys):
            found.append((name, [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]))
    return found


def write_detection_set(root: Path, count: int, fmt: str = "voc", seed: int = 0, size=(96, 128)) -> Path:
    """``count`` scenes with their boxes as Pascal VOC XML (``images/`` + ``annotations/``), COCO JSON
    (``images/`` + ``instances.json``) or YOLO txt (``images/`` + ``labels/`` + ``classes.txt``)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    categories = [{"id": 1, "name": "square"}, {"id": 2, "name": "disc"}]
    coco: dict = {"images": [], "annotations": [], "categories": categories}
    for i in range(count):
        image, mask = scene(rng, size)
        h, w = mask.shape
        Image.fromarray(image).save(root / "images" / f"{i:03d}.png")
        boxes = scene_boxes(mask)
        if fmt == "voc":
            objects = "".join(
                f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>"
                for n, b in boxes
            )
            (root / "annotations").mkdir(exist_ok=True)
            (root / "annotations" / f"{i:03d}.xml").write_text(
                f"<annotation><filename>{i:03d}.png</filename><size><width>{w}</width><height>{h}</height></size>"
                f"{objects}</annotation>"
            )
        elif fmt == "coco":
            coco["images"].append({"id": i, "file_name": f"{i:03d}.png", "width": w, "height": h})
            for n, b in boxes:
                coco["annotations"].append({"id": len(coco["annotations"]), "image_id": i,
                                            "category_id": 1 if n == "square" else 2,
                                            "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "iscrowd": 0})  # fmt: skip
        elif fmt == "yolo":
            (root / "labels").mkdir(exist_ok=True)
            (root / "classes.txt").write_text("square\ndisc\n")
            lines = [f"{0 if n == 'square' else 1} {(b[0] + b[2]) / 2 / w} {(b[1] + b[3]) / 2 / h} "
                     f"{(b[2] - b[0]) / w} {(b[3] - b[1]) / h}" for n, b in boxes]  # fmt: skip
            (root / "labels" / f"{i:03d}.txt").write_text("\n".join(lines) + "\n")
    if fmt == "coco":
        import json

        (root / "instances.json").write_text(json.dumps(coco, indent=1))
    return root
