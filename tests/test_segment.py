"""``transferlab segment``: the data layouts and mask kinds, every refused input, the losses and
metrics against hand-counted values, frozen meaning frozen, and a real run on the ISBI membranes."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_user_error, scene, write_segmentation_set
from transferlab.engine.checkpoint import load_checkpoint
from transferlab.engine.session import checkpoint_path
from transferlab.tasks import segment
from transferlab.tasks.segment.data import load_segmentation

TINY = {"img_size": 64, "epochs": 1, "batch_size": 4, "width": 8, "accelerator": "cpu"}


@pytest.fixture(scope="module")
def membrane(shared_data, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("membrane")
    with tarfile.open(shared_data / "membrane.tar.gz") as archive:
        archive.extractall(root, filter="data")
    return root / "membrane"


@pytest.mark.parametrize("kind", ["index", "palette", "16bit", "colour", "binary"])
def test_every_mask_kind_reads_as_the_same_classes(kind, tmp_path):
    table = tmp_path / "classes.txt"
    table.write_text("background,0,0,0\nsquare,255,255,0\ndisc,0,0,255\n")
    data = load_segmentation(
        write_segmentation_set(tmp_path / kind, 6, kind), classes=str(table) if kind == "colour" else None
    )
    reference = load_segmentation(write_segmentation_set(tmp_path / "reference", 6, "index"))
    got, want = data.train.masks + data.val.masks, reference.train.masks + reference.val.masks
    if kind == "binary":
        want = [(m > 0).long() for m in want]
    assert all(torch.equal(g, w) for g, w in zip(got, want))
    assert len(data.classes) == (2 if kind == "binary" else 3)
    assert data.classes[1] == ("square" if kind == "colour" else "class_1")


def test_layouts_train_val_folders_voc_and_explicit_folders(tmp_path):
    for part, count in (("train", 5), ("val", 3)):
        write_segmentation_set(tmp_path / "split" / part, count, seed=count)
    split = load_segmentation(tmp_path / "split")
    assert (len(split.train), len(split.val)) == (5, 3)
    voc = tmp_path / "VOC"
    rng = np.random.default_rng(1)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True)
    for i in range(4):
        image, mask = scene(rng)
        mask[0, :] = 255  # VOC's void border
        Image.fromarray(image).save(voc / "JPEGImages" / f"img{i}.jpg")
        pal = Image.fromarray(mask, "P")
        pal.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [224, 224, 192] * 253)
        pal.save(voc / "SegmentationClass" / f"img{i}.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text("img0\nimg1\nimg2\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("img3\n")
    read = load_segmentation(voc, classes="background,red,green")
    assert (len(read.train), len(read.val)) == (3, 1) and int(read.val.masks[0][0, 0]) == 255  # void kept
    explicit = load_segmentation(images=str(tmp_path / "split/train/images"), masks=str(tmp_path / "split/train/masks"))
    assert len(explicit.train) + len(explicit.val) == 5


def test_bad_input_names_the_file_and_the_remedy(tmp_path, cli):
    data = write_segmentation_set(tmp_path / "d", 4)
    (data / "masks" / "002.png").unlink()
    assert_user_error(cli("segment", "train", data), "have no mask", "002.jpg")
    data = write_segmentation_set(tmp_path / "size", 4)
    Image.new("L", (10, 10)).save(data / "masks" / "001.png")
    assert_user_error(cli("segment", "train", data), "001.png is 10x10", "its image's size")
    data = write_segmentation_set(tmp_path / "colour", 4, "colour")
    table = tmp_path / "two.txt"
    table.write_text("background,0,0,0\nsquare,255,255,0\n")
    assert_user_error(cli("segment", "train", data, "--classes", table), "(0, 0, 255)", "add it to --classes")
    data = write_segmentation_set(tmp_path / "beyond", 4)
    assert_user_error(cli("segment", "train", data, "--classes", "a,b"), "class index 2", "--classes with 3 names")
    split = tmp_path / "split"
    write_segmentation_set(split / "train", 3)
    (split / "val" / "images").mkdir(parents=True)
    (split / "val" / "masks").mkdir(parents=True)
    assert_user_error(
        cli("segment", "train", split, "--epochs", "1", "--out", tmp_path / "o"), "held-out part", "add images"
    )
    assert_user_error(cli("segment", "train", tmp_path / "nothing-here"), "not a folder")
    assert_user_error(cli("segment", "train", data, "--img-size", "50"), "multiple of 32")
    assert_user_error(cli("segment", "train", data, "--decoder", "segformer"), "unknown --decoder")
    assert_user_error(cli("segment", "train", data, "--max-steps", "-1"), "--max-steps -1", "0 (no cap)")
    assert_user_error(cli("segment", "train", data, "--time-budget", "-5"), "--time-budget -5", "number of minutes")


def test_the_cpu_defaults_end_at_a_time_budget_not_a_step_count():
    from transferlab.options.segment import SegmentOptions

    cpu, gpu = SegmentOptions().for_device("cpu"), SegmentOptions().for_device("cuda")
    assert (cpu.img_size, cpu.epochs, cpu.max_steps, gpu.max_steps) == (192, 60, None, None)
    assert (cpu.time_budget, gpu.time_budget) == (19, 0)
    assert SegmentOptions(max_steps=50).for_device("cpu").max_steps == 50  # a given option is kept


def test_a_time_budget_cuts_whole_epochs_scores_the_last_and_carries_over_a_resume(tmp_path, cli, monkeypatch):
    """A budget the first epoch already spends ends the run there, scored and reported; a resumed
    run counts the time spent before it (here: a budget lowered on resume ends it one epoch later)."""
    monkeypatch.setenv("TRANSFERLAB_QUIET", "0")
    data = write_segmentation_set(tmp_path / "d", 8)
    args = ("--backbone", "resnet10t:random", "--img-size", "32", "--epochs", "4", "--batch-size", "4",
            "--width", "8", "--eval-every", "3")  # fmt: skip
    code, _, err = cli("segment", "train", data, *args, "--time-budget", "0.0001", "--out", tmp_path / "cut")
    assert code == 0, err
    assert "4 epochs would take more than --time-budget 0.0001 min: training 1" in err, err
    rows = (tmp_path / "cut" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].split(",")[rows[0].split(",").index("miou")], rows  # epoch 1, scored
    assert (tmp_path / "cut" / "report.html").exists()

    options = {"backbone": "resnet10t:random", "img_size": 32, "epochs": 4, "batch_size": 4, "width": 8}
    segment.train(data, out=tmp_path / "part", stop_after=1, time_budget=60, **options)
    segment.train(data, resume=tmp_path / "part", time_budget=0.0001)
    state = load_checkpoint(checkpoint_path(tmp_path / "part"))
    assert (state["epoch"], state["epochs"], len(state["clock"]["epochs"])) == (2, 2, 2)
    assert (tmp_path / "part" / "report.html").exists()


def test_the_time_budget_fits_the_most_epochs_its_pace_and_scorings_allow():
    from transferlab.engine.epochs import TimeBudget

    def every(k):
        return lambda epoch, last: epoch % k == 0 or epoch == last

    clock = TimeBudget(100)
    clock.epochs, clock.scorings = [12.0, 10.0], [5.0]  # spent 27 s; the pace 10 s (the warm-up epoch left out)
    # n epochs: 27 + (n - 2) * 10 + 5 * scorings in epochs 2..n (every 3rd and the last)
    # 8 epochs: 27 + 60 + 5 * 3 (after 3, 6, 8) = 102 > 100; 7 epochs: 27 + 50 + 5 * 3 (3, 6, 7) = 92
    assert clock.epochs_within(2, 30, every(3)) == 7
    assert clock.epochs_within(2, 5, every(3)) == 5  # the plan fits: 27 + 30 + 10 (3, 5) = 67
    assert clock.epochs_within(2, 30, every(1)) == 6  # every epoch scored: 27 + 15 * (n - 2) + 5 <= 100
    clock.epochs += [30.0, 11.0]  # one slow epoch is not the pace: the median of the last three is
    assert clock.pace == 11.0
    clock.epochs.append(50.0)  # spent 118, already over
    assert clock.epochs_within(5, 30, every(3)) == 5  # stop now (and score it)


def test_the_announced_duration_says_the_budget_may_cut_it():
    from types import SimpleNamespace

    from transferlab.engine.epochs import EpochRecipe, TimeBudget

    said = EpochRecipe.also_takes(SimpleNamespace(clock=TimeBudget(19 * 60)))
    assert said == "held-out scoring; --time-budget 19 min trains fewer epochs if they do not fit"
    assert EpochRecipe.also_takes(SimpleNamespace(clock=TimeBudget(0))) == "held-out scoring"


def test_the_start_says_the_choices_and_the_time_scoring_adds(tmp_path, cli, monkeypatch):
    """The duration announced after the first steps counts training only; the first held-out
    scoring says what the scorings still to come add."""
    monkeypatch.setenv("TRANSFERLAB_QUIET", "0")
    data = write_segmentation_set(tmp_path / "d", 8)
    code, _, err = cli("segment", "train", data, "--backbone", "resnet10t:random", "--img-size", "32",
                       "--epochs", "3", "--eval-every", "1", "--batch-size", "4", "--width", "8",
                       "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, err
    assert "segment: the defaults for a CPU: --time-budget 19 --schedule constant (set any of them" in err, err
    assert "segment: held-out scoring takes" in err and "2 more add about" in err, err


def test_metrics_are_the_hand_counted_ones_and_void_is_excluded():
    from transferlab import metrics
    from transferlab.metrics.segmentation import confusion

    truth = torch.tensor([[0, 0, 1, 1], [1, 1, 255, 255]])
    guess = torch.tensor([[0, 1, 1, 1], [1, 0, 0, 0]])  # the void pixels' guesses must not count
    m = metrics.compute("segmentation", matrix=confusion(guess, truth, 2, 255), classes=["a", "b"])
    # class a: TP 1, FP 1, FN 1 -> IoU 1/3; class b: TP 3, FP 1, FN 1 -> IoU 3/5
    assert m["miou"] == pytest.approx((1 / 3 + 3 / 5) / 2)
    assert m["pixel_accuracy"] == pytest.approx(4 / 6) and m["pixels"] == 6
    assert m["class_accuracy"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert m["mean_dice"] == pytest.approx((2 / 4 + 6 / 8) / 2)


def test_losses_ignore_void_and_reach_zero_on_a_perfect_prediction():
    from transferlab.tasks.segment.losses import SegmentationLoss

    target = torch.tensor([[[0, 1], [1, 255]]])
    perfect = torch.nn.functional.one_hot(target.clamp(max=1), 2).permute(0, 3, 1, 2).float() * 50
    perfect[0, :, 1, 1] = torch.tensor([-50.0, 50.0])  # wrong on the void pixel: not counted
    for names in ("ce", "dice", "focal", "ce+dice"):
        assert float(SegmentationLoss(names, 255)(perfect, target)) < 1e-3, names
    assert float(SegmentationLoss("ce", 255)(-perfect, target)) > 10


@pytest.mark.heavy(17)
def test_membrane_run_evaluates_applies_and_exports(membrane, tmp_path, cli):
    # 5 epochs (30 steps): smp's U-Net layout finds both classes later than the layout before (2 epochs)
    code, out, err = cli("segment", "train", membrane, "--img-size", "64", "--epochs", "5", "--batch-size", "4",
                         "--width", "8", "--accelerator", "cpu", "--out", tmp_path / "run")  # fmt: skip
    assert code == 0, err
    assert "held-out mIoU" in out
    run = tmp_path / "run"
    for name in ("report.html", "overlays.png", "iou.png", "confusion.png", "evaluation.json", "metrics.csv"):
        assert (run / name).is_file(), name
    html = (run / "report.html").read_text()  # each held-out image with where it looks and how unsure it is
    assert "where it looks | uncertainty" in html and "the entropy of the class probabilities" in html
    scores = json.loads((run / "evaluation.json").read_text())
    assert 0.3 < scores["miou"] <= 1 and [c["class"] for c in scores["per_class"]] == ["class_0", "class_1"]
    # both classes are found: a network that predicts one class everywhere has IoU 0 for the other
    assert all(c["iou"] > 0.1 for c in scores["per_class"]), scores["per_class"]
    code, out, err = cli("segment", "evaluate", run, membrane, "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 30
    # a test set laid out as two folders of other names is scored as it is, with the blind classes named
    for folder, source in (("test", "images"), ("testannot", "masks")):
        (tmp_path / folder).mkdir()
        for name in ("0.png", "1.png", "2.png"):
            (tmp_path / folder / name).write_bytes((membrane / source / name).read_bytes())
    code, out, err = cli("segment", "evaluate", run, "--images", tmp_path / "test", "--masks", tmp_path / "testannot",
                         "--predict-size", "96")  # fmt: skip
    assert code == 0, err
    assert "3 images: mIoU" in out and ("below 0.1 IoU" in out or "every class at 0.1 IoU or more" in out), out
    assert json.loads((run / "evaluations" / "test" / "segment.json").read_text())["predict_size"] == 96
    assert json.loads((run / "run.json").read_text())["model"]["predict_size"] == 96  # 4/3 of --img-size 64
    assert_user_error(cli("segment", "evaluate", run), "no data to evaluate on", "--images DIR --masks DIR")
    assert_user_error(cli("segment", "evaluate", run, membrane, "--images", tmp_path / "test", "--masks", membrane),
                      "both DATA and --images")  # fmt: skip
    assert_user_error(cli("segment", "evaluate", run, membrane, "--classes", "a,b,c"), "the run class_0, class_1")
    code, out, err = cli("segment", "apply", run, membrane / "images" / "0.png", "-o", tmp_path / "masks")
    assert code == 0, err
    mask = np.asarray(Image.open(tmp_path / "masks" / "0_mask.png"))
    assert mask.shape == (512, 512) and set(np.unique(mask)) <= {0, 1}
    assert Image.open(tmp_path / "masks" / "0_overlay.png").size == (512, 512)
    code, _, err = cli("export", run, "--format", "onnx")
    assert code == 0, err
    import onnxruntime

    net, _ = segment.load_segmenter(run)
    x = torch.rand(3, 3, 64, 64)
    onnx_logits = onnxruntime.InferenceSession(str(run / "model.onnx")).run(None, {"images": x.numpy()})[0]
    assert np.abs(onnx_logits - net(x).detach().numpy()).max() < 1e-4
    assert_user_error(cli("export", membrane.parent), "not a transferlab run")
    assert_user_error(cli("segment", "apply", tmp_path / "nope", membrane), "not a transferlab run")


def test_translate_builds_its_shared_unet_at_32_px_with_a_batchnorm_encoder(tmp_path):
    """Found as a new user: the U-Net probed its encoder in training mode with one image, so a
    BatchNorm encoder at 32 px failed ("Expected more than 1 value per channel")."""
    from transferlab.tasks import translate

    photos = write_segmentation_set(tmp_path / "p", 6)
    result = translate.train(
        photos / "images",
        out=tmp_path / "t",
        task="denoise",
        backbone="resnet10t:random",
        img_size=32,
        steps=2,
        batch_size=2,
        eval_every=0,
        decoder_width=8,
        perceptual_weight=0.0,
    )
    assert result.scores["psnr"] > 0


def test_compare_trains_each_strategy_on_one_split_into_one_table(tmp_path, cli):
    data = write_segmentation_set(tmp_path / "scenes", 6)
    code, _, err = cli("segment", "train", data, "--compare", "scratch,frozen", "--img-size", "64", "--epochs", "1",
                       "--batch-size", "4", "--width", "8", "-o", tmp_path / "cmp")  # fmt: skip
    assert code == 0, err
    table = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert [row["strategy"] for row in table["rows"]] == ["scratch", "frozen"] and table["task"] == "segment"
    assert all(0 <= row["mIoU"] <= 1 for row in table["rows"]) and (tmp_path / "cmp" / "report.html").is_file()
    assert_user_error(cli("segment", "train", data, "--compare", "scratch,best"), "unknown best")


def test_overlays_keep_the_photo_visible_and_spread_over_the_held_out_set():
    """Found on a street-scene set: class 0 was drawn black (a "sky" class darkened the sky), and
    the report showed the first six frames of a video, with none of the rare classes."""
    from transferlab.tasks.segment.data import default_colours
    from transferlab.tasks.segment.report import overlay, overlay_picks, weak_classes, weak_line

    colours = default_colours(30)
    assert len(set(colours)) == 30 and min(sum(c) for c in colours) >= 128  # no class near black
    image = torch.full((3, 4, 4), 200, dtype=torch.uint8)
    mask = torch.zeros(4, 4, dtype=torch.long)
    mask[0] = 255  # void
    drawn = overlay(image, mask, colours, 255)
    assert (drawn[0] == 200).all() and drawn[1:].mean() > 100  # void untouched, class 0 not darkened
    masks = [torch.zeros(8, 8, dtype=torch.long) for _ in range(40)]
    masks[17][:2, :2], masks[29][:1, :1] = 2, 3  # two rare classes, each in one image
    picks = overlay_picks(masks, 4, 255, count=6)
    assert len(picks) == 6 and {17, 29} <= set(picks) and {0, 39} <= set(picks)  # the rare ones, then spread
    scores = {"per_class": [{"class": "sky", "iou": 0.9, "pixels": 900}, {"class": "pole", "iou": 0.0, "pixels": 9},
                            {"class": "sign", "iou": 0.05, "pixels": 91}]}  # fmt: skip
    assert [c["class"] for c in weak_classes(scores)] == ["pole", "sign"]
    assert (
        weak_line(scores) == "2 class(es) below 0.1 IoU (their share of the pixels): pole 0.00 (0.9%), sign 0.05 (9.1%)"
    )


def test_frame_crops_follow_the_images_aspect_and_bad_scales_are_refused(tmp_path, cli):
    from transferlab.tasks.segment.recipe import crop_shape, random_crop

    frames = [torch.zeros(3, 360, 480, dtype=torch.uint8)] * 3 + [torch.zeros(3, 100, 100, dtype=torch.uint8)]
    assert crop_shape(frames, 192, "frame") == (192, 256) and crop_shape(frames, 192, "square") == (192, 192)
    image, mask = torch.randint(0, 255, (3, 360, 480), dtype=torch.uint8), torch.randint(0, 3, (360, 480))
    x, y = random_crop(image, mask, (192, 256), 1.0, torch.tensor([0.5, 0.5]), False, 255)
    assert x.shape == (3, 192, 256) and y.shape == (192, 256) and (y != 255).all()  # scale 1: the whole frame
    data = write_segmentation_set(tmp_path / "d", 4)
    for bad in ("2,1", "0,1", "one"):
        assert_user_error(cli("segment", "train", data, "--scales", bad), f"--scales '{bad}'", "--scales 0.75,1.5")


def test_zero_counts_are_refused_not_divided_by(tmp_path, cli):
    """--eval-every 0 passed the old check (0 read as unset) and then divided by zero in the loop."""
    data = write_segmentation_set(tmp_path / "d", 4)
    for flag in ("--eval-every", "--epochs", "--batch-size"):
        assert_user_error(cli("segment", "train", data, flag, "0"), f"{flag} 0 must be at least 1", f"e.g. {flag}")
    assert_user_error(cli("detect", "train", data, "--eval-every", "0"), "--eval-every 0 must be at least 1", "e.g.")


def test_runs_saved_before_the_smp_layout_still_load_with_their_own_unet(tmp_path):
    """``unet`` took smp's layout (nearest upsampling, no stride-32 block, no input skip); a run
    saved before, whose ``run.json`` names ``unet`` without a decoder version, loads its own layout."""
    from torch import nn

    data = write_segmentation_set(tmp_path / "d", 6)
    new = segment.train(data, out=tmp_path / "new", **TINY)
    net, spec = segment.load_segmenter(new.run_dir)
    assert spec["decoder"] == "unet" and not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    old = segment.train(data, out=tmp_path / "old", decoder="unet-transposed", **TINY)
    run_json = old.run_dir / "run.json"
    saved = json.loads(run_json.read_text())
    saved["model"]["decoder"] = "unet"
    del saved["model"]["decoder_version"]
    run_json.write_text(json.dumps(saved))
    net, spec = segment.load_segmenter(old.run_dir)
    assert spec["decoder"] == "unet-transposed" and any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    assert segment.evaluate(old.run_dir, data)["miou"] >= 0


def test_a_negative_weight_decay_is_refused(tmp_path, cli):
    data = write_segmentation_set(tmp_path / "d", 4)
    assert_user_error(
        cli("segment", "train", data, "--weight-decay", "-0.1"), "--weight-decay >= 0", "--weight-decay 1e-4"
    )
