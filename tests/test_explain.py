"""``transferlab explain``: maps over whole images of classifier and segmenter runs and ImageNet
models, where they point on real photos, the sanity check, and every bad input."""

from __future__ import annotations

import json
import shutil
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import assert_user_error, make_class_folder, write_image, write_segmentation_set

pytestmark = pytest.mark.xdist_group("explain")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    from transferlab.tasks import classify, segment

    root = tmp_path_factory.mktemp("explain-runs")
    photos = make_class_folder(root / "photos", {"red": 6, "blue": 6})
    classify.train(photos, out=root / "classifier", img_size=32, batch_size=8, epochs=1, devices=1)
    scenes = write_segmentation_set(root / "scenes", 6)
    segment.train(scenes, out=root / "segmenter", img_size=64, epochs=1, batch_size=4, width=8,
                  backbone="resnet10t:random", accelerator="cpu")  # fmt: skip
    return root


@pytest.fixture(scope="module")
def kangaroos(shared_data, tmp_path_factory) -> list[tuple[Path, list[tuple[int, int, int, int]]]]:
    """The first 12 kangaroo photos with their boxes (xmin, ymin, xmax, ymax)."""
    root = tmp_path_factory.mktemp("kangaroo")
    with tarfile.open(shared_data / "kangaroo.tar.gz") as archive:
        archive.extractall(root, filter="data")
    found = []
    for xml in sorted(root.rglob("*.xml"))[:12]:
        tree = ET.parse(xml)
        image = next(root.rglob(tree.findtext("filename")))
        boxes = [tuple(int(float(o.findtext(f"bndbox/{k}"))) for k in ("xmin", "ymin", "xmax", "ymax"))
                 for o in tree.iter("object")]  # fmt: skip
        found.append((image, boxes))
    return found


def test_classifier_run_maps_whole_images_of_any_size(runs, tmp_path, cli, monkeypatch):
    import transferlab.tasks.explain as explain

    monkeypatch.setattr(explain, "CHUNK", 1)  # one image a step: the order and names hold across steps
    wide = write_image(tmp_path / "in" / "wide.png", (220, 40, 40), size=(90, 40))
    tall = write_image(tmp_path / "in" / "tall.jpg", (40, 60, 220), size=(33, 70))
    code, out, err = cli("explain", runs / "classifier", wide, tall, "-o", tmp_path / "maps", "--json")
    assert code == 0, err
    found = json.loads(out)
    assert [Path(f["path"]).name for f in found] == ["wide.png", "tall.jpg"]
    for item, (w, h) in zip(found, [(90, 40), (33, 70)]):
        assert item["class"] in ("red", "blue") and 0 <= item["score"] <= 1 and item["method"] == "gradcam"
        heat = np.load(item["files"]["cam_npy"])
        assert heat.shape == (h, w) and heat.dtype == np.float32 and 0 <= heat.min() <= heat.max() <= 1
        x, y = item["peak"]
        assert heat[y, x] == heat.max()
        assert Image.open(item["files"]["cam_png"]).size == (w, h)
    blue = json.loads(cli("explain", runs / "classifier", tall, "--class", "blue", "-o", tmp_path / "b", "--json")[1])
    assert blue[0]["class"] == "blue" and blue[0]["class_index"] == 0  # classes in name order


@pytest.mark.parametrize("method", ["gradcam++", "layercam", "eigencam"])
def test_every_method_gives_a_map(runs, tmp_path, method):
    from transferlab.tasks.explain import explain

    image = write_image(tmp_path / "x.png", size=(48, 40))
    (found,) = explain([image], run=runs / "classifier", method=method, out=tmp_path / method)
    heat = np.load(found.files["cam_npy"])
    assert found.method == method and heat.shape == (40, 48) and np.isfinite(heat).all()


def test_segmenter_maps_a_class_and_its_uncertainty(runs, tmp_path, cli):
    scene = next((runs / "scenes" / "images").iterdir())
    code, out, err = cli("explain", runs / "segmenter", scene, "--class", "2", "-o", tmp_path / "seg", "--json")
    assert code == 0, err
    (item,) = json.loads(out)
    assert item["class_index"] == 2 and 0 <= item["mean_uncertainty"] <= 1
    size = Image.open(scene).size[::-1]
    for kind in ("cam", "uncertainty"):
        values = np.load(item["files"][f"{kind}_npy"])
        assert values.shape == size and 0 <= values.min() <= values.max() <= 1
    assert Path(item["files"]["uncertainty_png"]).is_file()


def test_imagenet_maps_point_at_the_kangaroos(kangaroos, tmp_path):
    """The pointing game on real photos: Grad-CAM's peak for 'wallaby' falls inside a boxed kangaroo
    far more often than the image centre does, and a network with random weights does not point
    like the trained one (the sanity check of Adebayo et al. 2018: rank correlation of the maps)."""
    from scipy.stats import spearmanr

    from transferlab.tasks.explain import explain

    images = [path for path, _ in kangaroos]
    trained = explain(images, model="tf_efficientnet_lite0", class_name="wallaby, brush kangaroo", out=tmp_path / "t")
    random = explain(images[:6], model="tf_efficientnet_lite0:random", class_name="104", out=tmp_path / "r")

    def inside(point, boxes):
        return any(x0 <= point[0] <= x1 and y0 <= point[1] <= y1 for x0, y0, x1, y1 in boxes)

    hits = np.mean([inside(e.peak, boxes) for e, (_, boxes) in zip(trained, kangaroos)])
    centres = [(Image.open(p).width // 2, Image.open(p).height // 2) for p in images]
    centre_hits = np.mean([inside(c, boxes) for c, (_, boxes) in zip(centres, kangaroos)])
    assert hits >= 0.8 and hits > centre_hits, (hits, centre_hits)
    correlations = [
        spearmanr(np.load(a.files["cam_npy"])[::8, ::8].ravel(), np.load(b.files["cam_npy"])[::8, ::8].ravel())[0]
        for a, b in zip(trained, random)
    ]
    assert np.nanmean(correlations) < 0.5, correlations


def test_bad_input(runs, tmp_path, cli):
    image = write_image(tmp_path / "x.png", size=(40, 40))
    assert_user_error(cli("explain", runs / "classifier", image, "--method", "gradcamm"), "unknown explanation method",
                      "gradcam")  # fmt: skip
    assert_user_error(cli("explain", runs / "classifier", image, "--class", "green"), "no class 'green'", "blue, red")
    assert_user_error(cli("explain", runs / "classifier"), "a run and at least one image")
    assert_user_error(cli("explain", runs / "classifier", tmp_path / "missing.png"), "does not exist")
    assert_user_error(cli("explain", "--model", "vit_tiny_patch16_224:random", image), "no spatial feature map")
    autoencoder = tmp_path / "autoencoder"
    shutil.copytree(runs / "classifier", autoencoder)
    meta = json.loads((autoencoder / "run.json").read_text())
    meta["model"]["kind"] = "autoencoder"
    (autoencoder / "run.json").write_text(json.dumps(meta))
    assert_user_error(cli("explain", autoencoder, image), "autoencoder model, which explain does not take",
                      "transferlab detect train")  # fmt: skip
    not_a_run = tmp_path / "plain"
    not_a_run.mkdir()
    assert_user_error(cli("explain", not_a_run, image), "not a transferlab run")


def test_maps_equal_the_librarys_own():
    """The backward pass starts at the explained layer (a shortcut): the maps stay pytorch-grad-cam's."""
    import timm
    import torch
    from pytorch_grad_cam import GradCAM, LayerCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from transferlab.tasks.explain.cam import METHODS, class_maps, find_layer

    torch.manual_seed(0)
    model = timm.create_model("resnet10t", num_classes=5).eval()
    x = torch.randn(2, 3, 96, 128)
    layer = find_layer(model, x)
    assert layer.name == "layer4" and layer.stride == 32
    for name, library in (("gradcam", GradCAM), ("layercam", LayerCAM)):
        targets = [ClassifierOutputTarget(1), ClassifierOutputTarget(3)]
        ours = class_maps(METHODS[name], model, layer, x, targets)
        with library(model=model, target_layers=[layer.module]) as cam:
            assert np.allclose(ours, cam(input_tensor=x, targets=targets), atol=1e-6)


def test_detector_maps_each_box(tmp_path, cli):
    """A detect run is explained with EigenCAM of its encoder, renormalised inside each box found."""
    import torch
    from tests.conftest import write_detection_set

    from transferlab.tasks import detect
    from transferlab.tasks.explain.subjects import detector

    shapes = write_detection_set(tmp_path / "shapes", 6)
    detect.train(shapes, out=tmp_path / "run", img_size=64, epochs=1, batch_size=4, width=64,
                 backbone="resnet10t:random", accelerator="cpu")  # fmt: skip
    image = sorted((shapes / "images").iterdir())[0]
    code, out, err = cli("explain", tmp_path / "run", image, "-o", tmp_path / "maps", "--json")
    assert code == 0, err
    (item,) = json.loads(out)
    assert item["method"] == "eigencam" and isinstance(item["boxes"], list)
    assert np.load(item["files"]["cam_npy"]).shape == Image.open(image).size[::-1]
    subject = detector(tmp_path / "run", None)
    assert subject.layer.stride == 32  # the encoder's deepest level, not a head's map
    heat = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    found = {
        "boxes": torch.tensor([[8.0, 8.0, 24.0, 40.0]]),
        "scores": torch.tensor([0.9]),
        "labels": torch.tensor([1]),
    }
    within, boxes = subject.boxes(heat, found)
    assert boxes[0]["label"] == subject.class_names[1] and within[8:40, 8:24].max() == pytest.approx(1)
    assert within[:8].max() == 0 and within[8:40, 8:24].min() == 0  # renormalised inside the box only
    assert_user_error(cli("explain", tmp_path / "run", image, "--method", "gradcam"), "does not apply",
                      "--method eigencam")  # fmt: skip


def test_the_default_size_grows_the_map_to_14_cells_but_at_most_3x_the_training_size(runs):
    """A run trained at 32 px is explained at 96 (3x; 448 px put its objects far larger than it
    learnt them: BENCHMARKS.md), ImageNet Lite0 (trained at 224) at 448 (14 cells), --size as given."""
    from transferlab.tasks.explain.subjects import load_subject

    square = Image.new("RGB", (50, 50), (120, 30, 30))
    side = lambda subject: min(subject.prepare(square).shape[-2:])  # noqa: E731
    assert side(load_subject(runs / "classifier", None, None, None)) == 96
    assert side(load_subject(None, "tf_efficientnet_lite0", None, None)) == 448
    assert side(load_subject(runs / "classifier", None, None, 160)) == 160
