"""``transferlab detect``: the three annotation formats read alike, every refused input, boxes moved
with their images, COCO mAP against hand-built cases, frozen meaning frozen, and a real run."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import assert_user_error, write_detection_set
from transferlab.tasks import detect
from transferlab.tasks.detect.data import load_detection

TINY = {"img_size": 64, "epochs": 1, "batch_size": 4, "width": 64, "accelerator": "cpu", "eval_every": 1}


def _everything(data) -> list[tuple[str, list, list]]:
    both = [(data.train, i) for i in range(len(data.train))] + [(data.val, i) for i in range(len(data.val))]
    return sorted((s.names[i], s.boxes[i].tolist(), [data.classes[c] for c in s.labels[i].tolist()]) for s, i in both)


def test_voc_coco_and_yolo_read_as_the_same_boxes(tmp_path):
    read = {fmt: load_detection(write_detection_set(tmp_path / fmt, 6, fmt)) for fmt in ("voc", "coco", "yolo")}
    reference = _everything(read["voc"])
    assert read["voc"].train.box_count + read["voc"].val.box_count == 12
    for fmt in ("coco", "yolo"):
        got = _everything(read[fmt])
        assert [g[0] for g in got] == [r[0] for r in reference] and [g[2] for g in got] == [r[2] for r in reference]
        assert np.allclose([b for g in got for b in g[1]], [b for r in reference for b in r[1]], atol=1e-3), fmt
    assert read["coco"].classes == ["square", "disc"] and read["yolo"].classes == ["square", "disc"]


def test_voc_layout_splits_negatives_difficult_and_clipping(tmp_path):
    voc = tmp_path / "VOC2007"
    write_detection_set(voc, 5, "voc")
    (voc / "images").rename(voc / "JPEGImages")
    (voc / "annotations").rename(voc / "Annotations")
    (voc / "ImageSets" / "Main").mkdir(parents=True)
    (voc / "ImageSets/Main/train.txt").write_text("000\n001\n002\n")
    (voc / "ImageSets/Main/val.txt").write_text("003\n004\n")
    xml = (voc / "Annotations/000.xml").read_text()
    extra = ("<object><name>disc</name><difficult>1</difficult><bndbox><xmin>-5</xmin><ymin>2</ymin><xmax>20</xmax>"
             "<ymax>300</ymax></bndbox></object><object><name>disc</name><bndbox><xmin>30</xmin><ymin>2</ymin>"
             "<xmax>10</xmax><ymax>8</ymax></bndbox></object>")  # fmt: skip
    (voc / "Annotations/000.xml").write_text(xml.replace("</annotation>", extra + "</annotation>"))
    (voc / "Annotations/001.xml").write_text("<annotation><filename>001.png</filename></annotation>")  # a negative
    with pytest.warns(UserWarning, match=r"(?s)dropped 1 zero-area or inverted box.*000.xml: box 4"):
        data = load_detection(voc)
    assert (len(data.train), len(data.val)) == (3, 2)
    first = data.train.names.index("000")
    assert data.train.difficult[first].tolist() == [False, False, True]
    assert data.train.boxes[first][2].tolist() == [0.0, 2.0, 20.0, 96.0]  # clipped to the 128 x 96 image
    assert len(data.train.boxes[data.train.names.index("001")]) == 0  # kept as a negative


def test_bad_input_names_the_file_and_the_remedy(tmp_path, cli):
    data = write_detection_set(tmp_path / "xml", 4, "voc")
    (data / "annotations/002.xml").write_text("<annotation>\n<object><name>disc</name>\n</annotation>")
    assert_user_error(cli("detect", "train", data), "002.xml:3:", "not well-formed XML")
    data = write_detection_set(tmp_path / "json", 4, "coco")
    (data / "instances.json").write_text('{"images": [\n  {"id": 1,,}\n]}')
    assert_user_error(cli("detect", "train", data), "instances.json:2:", "not valid JSON")
    data = write_detection_set(tmp_path / "missing", 4, "voc")
    (data / "images/001.png").unlink()
    assert_user_error(cli("detect", "train", data), "001.xml annotates '001'", "add the image")
    data = write_detection_set(tmp_path / "coco-missing", 4, "coco")
    (data / "images/003.png").unlink()
    assert_user_error(cli("detect", "train", data), "lists the image 003.png", "add the image")
    data = write_detection_set(tmp_path / "yolo", 4, "yolo")
    (data / "images/000.png").unlink()
    assert_user_error(cli("detect", "train", data), "000.txt has no image", "add the image")
    data = write_detection_set(tmp_path / "classes", 4, "voc")
    assert_user_error(cli("detect", "train", data, "--classes", "square"), "the class 'disc'", "add it to --classes")
    empty = tmp_path / "empty"
    write_detection_set(empty, 3, "voc")
    for xml in (empty / "annotations").glob("*.xml"):
        xml.write_text("<annotation><filename>x.png</filename></annotation>")
    assert_user_error(cli("detect", "train", empty), "has no box in any image", "annotate")
    assert_user_error(cli("detect", "train", data, "--img-size", "100"), "--img-size 100")
    assert_user_error(cli("detect", "train", data, "--detector", "yolo9"), "unknown --detector 'yolo9'")
    assert_user_error(cli("detect", "train", data, "--init", "coco"), "TRANSFERLAB_OFFLINE", "--init imagenet")


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.75, 1.25), corner=st.tuples(st.floats(0, 1), st.floats(0, 1)), flip=st.booleans())
def test_boxes_move_with_their_image(scale, corner, flip):
    """A white rectangle on black, jittered: the moved box still frames the white pixels."""
    from transferlab.tasks.detect.recipe import jittered

    image = torch.zeros(3, 90, 160, dtype=torch.uint8)
    image[:, 20:70, 40:100] = 255
    moved, boxes = jittered(image, torch.tensor([[40.0, 20, 100, 70]]), 96, scale, list(corner), flip, [1, 1, 1])
    assert max(moved.shape[-2:]) <= 96
    ys, xs = torch.nonzero(moved[0] > 127, as_tuple=True)
    if len(ys) and boxes[0, 0] > 0:
        white = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
        assert torch.allclose(boxes[0, 1:], white, atol=1.5), (boxes, white)


def test_coco_map_on_hand_built_cases():
    from transferlab import metrics

    truth = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 40, 40]]), "labels": torch.tensor([0, 1]),
              "iscrowd": torch.tensor([0, 0])}]  # fmt: skip
    perfect = [{"boxes": truth[0]["boxes"], "scores": torch.tensor([0.9, 0.8]), "labels": torch.tensor([0, 1])}]
    scores = metrics.compute("detection", predictions=perfect, targets=truth, classes=["a", "b"])
    assert scores["map"] == pytest.approx(1.0) and scores["map_50"] == pytest.approx(1.0)
    # class b's box found at IoU 2/3 only: AP is 1 at thresholds .50-.65, 0 above
    shifted = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [24, 20, 44, 40]]), "scores": torch.tensor([0.9, 0.8]),
                "labels": torch.tensor([0, 1])}]  # fmt: skip
    scores = metrics.compute("detection", predictions=shifted, targets=truth, classes=["a", "b"])
    assert scores["map_50"] == pytest.approx(1.0) and scores["map_75"] == pytest.approx(0.5)
    assert [c["ap"] for c in scores["per_class"]] == pytest.approx([1.0, 0.4], abs=1e-6)  # b: 4 of 10 thresholds
    # a difficult (crowd) truth is neither to be found nor a false positive's excuse to count
    hard = [{**truth[0], "iscrowd": torch.tensor([0, 1])}]
    only_a = [{"boxes": truth[0]["boxes"][:1], "scores": torch.tensor([0.9]), "labels": torch.tensor([0])}]
    scores = metrics.compute("detection", predictions=only_a, targets=hard, classes=["a", "b"])
    assert scores["map"] == pytest.approx(1.0) and scores["per_class"][1]["boxes"] == 0


@pytest.mark.parametrize("name", ["fcos", "retinanet", "fasterrcnn"])
def test_every_detector_trains_and_detects_in_input_pixels(name):
    from transferlab.tasks.detect.models import build_detector

    net = build_detector(name, "resnet10t:random", 2, 64, width=64)
    losses = net([torch.rand(3, 64, 48)], [{"boxes": torch.tensor([[4.0, 4, 30, 40]]), "labels": torch.tensor([1])}])
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    found = net.eval()([torch.rand(3, 200, 300)])[0]
    assert set(found) == {"boxes", "scores", "labels"}
    if len(found["boxes"]):
        assert found["boxes"][:, 2].max() <= 300 and found["boxes"][:, 3].max() <= 200
        assert found["labels"].min() >= 0 and found["labels"].max() <= 1


@pytest.mark.heavy(38)
def test_train_evaluate_apply_on_a_real_photo_set(shared_data, tmp_path, cli):
    """Kangaroo photos (VOC XML; one is a truncated JPEG, skipped with a warning): a short run
    through the CLI, then evaluate --json and apply with drawn images and COCO results."""
    run = tmp_path / "run"
    code, out, err = cli("detect", "train", shared_data / "kangaroo.tar.gz", "--img-size", "128", "--epochs", "2",
                         "--batch-size", "8", "--eval-every", "2", "-o", run)  # fmt: skip
    assert code == 0, err
    assert "held-out mAP@[.5:.95]" in " ".join(out.split()) and "00090.jpg" in err
    for name in ("model.safetensors", "run.json", "report.html", "detections.png", "pr_curve.png", "map.png",
                 "maps.png"):  # fmt: skip
        assert (run / name).is_file(), name
    assert "Where it looks (eigencam" in (run / "report.html").read_text()
    scores = json.loads((run / "evaluation.json").read_text())
    assert scores["map_50"] > 0.05 and len(scores["pr_curve"]["precision"]) == 101
    assert scores["per_class"][0]["class"] == "kangaroo"
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in (1, 2, 3):
        Image.new("RGB", (300 + 50 * i, 200), (90 + 20 * i, 120, 60)).save(photos / f"p{i}.jpg")
    code, out, err = cli("detect", "apply", run, photos, "-o", tmp_path / "boxes", "--score-threshold", "0.0",
                         "--batch-size", "2")  # fmt: skip
    assert code == 0, err
    results = json.loads((tmp_path / "boxes" / "detections.json").read_text())
    assert {r["image_id"] for r in results} <= {"p1.jpg", "p2.jpg", "p3.jpg"} and results
    assert all(len(r["bbox"]) == 4 and r["category"] == "kangaroo" for r in results)
    assert Image.open(tmp_path / "boxes" / "p3_boxes.jpg").size == (450, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, out, err = cli("detect", "evaluate", run, shared_data / "kangaroo.tar.gz", "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 163
    code, _, err = cli("export", run, "--format", "onnx")
    assert code == 0, err
    import onnxruntime

    net, _ = detect.load_detector(run)
    session = onnxruntime.InferenceSession(str(run / "model.onnx"))
    for size in ((200, 300), (333, 250)):  # any image size, as the run detects
        image = torch.rand(3, *size)
        boxes, scores, labels = session.run(None, {"image": image.numpy()})
        want = net([image])[0]
        assert len(boxes) == len(want["boxes"]) and np.abs(boxes - want["boxes"].detach().numpy()).max() < 0.05
        assert np.abs(scores - want["scores"].detach().numpy()).max() < 1e-4 and (labels == 0).all()
    assert_user_error(cli("export", run, "--format", "torchscript"), "ONNX only", "--format onnx")
    assert_user_error(cli("segment", "apply", run, photos), "detector", "detect")


def test_a_step_budget_trains_whole_epochs_within_it():
    from transferlab.engine.epochs import budgeted_epochs

    assert budgeted_epochs("detect", 30, 17, 600, announce=False) == 30  # 510 steps fit
    assert budgeted_epochs("detect", 30, 40, 600, announce=False) == 15  # a larger set: fewer epochs
    assert budgeted_epochs("detect", 30, 700, 600, announce=False) == 1  # never none
    assert budgeted_epochs("detect", 30, 40, 0, announce=False) == 30  # 0: no cap


def test_compare_trains_each_strategy_on_one_split_into_one_table(tmp_path, cli):
    data = write_detection_set(tmp_path / "shapes", 8)
    code, _, err = cli("detect", "train", data, "--compare", "scratch,frozen", "--img-size", "64", "--epochs", "1",
                       "--batch-size", "4", "--width", "64", "--backbone", "resnet10t:random",
                       "-o", tmp_path / "cmp")  # fmt: skip
    assert code == 0, err
    table = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [row["strategy"] for row in table["rows"]] == ["scratch", "frozen"]
    assert all(0 <= row["mAP@.5"] <= 1 for row in table["rows"]) and (tmp_path / "cmp" / "report.html").is_file()
    assert_user_error(cli("detect", "train", data, "--compare", "scratch,best"), "unknown best")


@pytest.mark.parametrize("name", ["fcos", "retinanet", "fasterrcnn"])
def test_coco_init_builds_torchvisions_detector_with_a_head_for_our_classes(name):
    """--init coco's network without its download: torchvision's ResNet-50 FPN detector with a new
    class layer for 3 classes, trainable and detecting (a saved run is loaded onto this network)."""
    from transferlab.tasks.detect.models import build_detector

    net = build_detector(name, "unused", 3, 64, pretrained=False, init="coco")
    losses = net([torch.rand(3, 64, 64)], [{"boxes": torch.tensor([[4.0, 4, 40, 50]]), "labels": torch.tensor([2])}])
    assert all(torch.isfinite(v) for v in losses.values())
    found = net.eval()([torch.rand(3, 96, 80)])[0]
    assert found["labels"].numel() == 0 or found["labels"].max() <= 2
    assert net.encoder is net.net.backbone.body  # what --strategy frozen freezes


def test_evaluate_takes_the_data_flags_train_takes(tmp_path, cli):
    """A test set laid out as two folders is scored with --images/--annotations, as train reads it,
    with the same scores as the folder given as DATA."""
    data = write_detection_set(tmp_path / "shapes", 6)
    run = detect.train(data, out=tmp_path / "run", backbone="resnet10t:random", **{**TINY, "eval_every": 1}).run_dir
    code, out, err = cli("detect", "evaluate", run, "--images", data / "images", "--annotations",
                         data / "annotations", "--json")  # fmt: skip
    assert code == 0, err
    by_flags = json.loads(out)
    code, out, err = cli("detect", "evaluate", run, data, "--json")
    assert code == 0, err
    assert {k: by_flags[k] for k in ("map", "map_50", "images")} == {
        k: json.loads(out)[k] for k in ("map", "map_50", "images")
    }
    assert (run / "evaluations" / "shapes" / "detect.json").is_file()
    assert_user_error(cli("detect", "evaluate", run, data, "--images", data / "images", "--annotations",
                          data / "annotations"), "both DATA and --images/--annotations")  # fmt: skip
    assert_user_error(cli("detect", "evaluate", run), "no data to evaluate on", "--images DIR --annotations")
