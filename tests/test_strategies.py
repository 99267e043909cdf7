"""The transfer strategies mean the same in every task (classify, segment, detect, translate):
``frozen`` leaves the pretrained body or encoder bitwise as it was (BatchNorm running statistics
included) while the rest trains, for each task that offers it (``transferlab/strategies.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_class_folder, write_detection_set, write_segmentation_set
from transferlab.strategies import names_for


def _classify(tmp_path: Path) -> tuple[dict, dict]:
    from transferlab import backbones
    from transferlab.runs import read_run
    from transferlab.tasks import classify

    data = make_class_folder(tmp_path / "d", {"red": 12, "green": 12, "blue": 12})
    classify.train(data, out=tmp_path / "run", strategy="frozen", img_size=32, batch_size=8, epochs=2,
                   warmup_epochs=0.5, devices=1, accelerator="cpu")  # fmt: skip
    after = backbones.from_run(read_run(tmp_path / "run")).model.state_dict()
    before = backbones.create("tf_efficientnet_lite0", num_classes=3).model.state_dict()
    body = [k for k in before if not k.startswith("classifier.")]  # the head is new and trains
    return {k: before[k] for k in body}, {k: after[k] for k in body}


def _segment(tmp_path: Path) -> tuple[dict, dict]:
    from transferlab.tasks import segment
    from transferlab.tasks.segment.recipe import build_network

    data = write_segmentation_set(tmp_path / "d", 8)
    options = {"img_size": 64, "epochs": 1, "batch_size": 4, "width": 8, "accelerator": "cpu", "strategy": "frozen"}
    run = segment.train(data, out=tmp_path / "run", **options)
    after, _ = segment.load_segmenter(run.run_dir)
    before = build_network(segment.SegmentOptions(**options), 3)
    return before.encoder.state_dict(), after.encoder.state_dict()


def _detect(tmp_path: Path) -> tuple[dict, dict]:
    from transferlab.tasks import detect
    from transferlab.tasks.detect.models import build_detector

    data = write_detection_set(tmp_path / "d", 8, "voc")
    run = detect.train(data, out=tmp_path / "run", strategy="frozen", img_size=64, epochs=1, batch_size=4, width=64,
                       accelerator="cpu", eval_every=1)  # fmt: skip
    after, _ = detect.load_detector(run.run_dir)
    before = build_detector("fcos", "tf_efficientnet_lite0", 2, 64, width=64)
    return before.encoder.state_dict(), after.encoder.state_dict()


def _translate(tmp_path: Path) -> tuple[dict, dict]:
    from transferlab.tasks import translate
    from transferlab.tasks.translate.networks import GENERATORS

    photos = make_class_folder(tmp_path / "d", {"photos": 12}) / "photos"
    run = translate.train(photos, out=tmp_path / "run", strategy="frozen", task="colorize", img_size=64, steps=3,
                          batch_size=4, decoder_width=8, perceptual_weight=0.0, eval_every=0)  # fmt: skip
    after, _ = translate.load_translator(run.run_dir)
    before = GENERATORS["unet"]("tf_efficientnet_lite0", 3, 64, 8)
    return before.encoder.state_dict(), after.encoder.state_dict()


TASKS = {"classify": _classify, "segment": _segment, "detect": _detect, "translate": _translate}


def test_every_task_that_has_an_encoder_offers_frozen():
    assert [task for task in TASKS if "frozen" in names_for(task)] == list(TASKS)


@pytest.mark.parametrize("task", list(TASKS))
def test_frozen_leaves_the_pretrained_body_bitwise_unchanged(task, tmp_path):
    before, after = TASKS[task](tmp_path)
    assert before.keys() == after.keys() and any("running_mean" in k for k in before), "BatchNorm is checked too"
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [], f"{task}: the frozen body changed in {changed[:3]}"


def test_translate_reads_the_encoder_rate_of_its_strategy_at_each_step(tmp_path):
    """gradual: the encoder at rate 0 (and its BatchNorm held) for the first third of the steps, then
    at --encoder-lr-mult; scratch: random weights at --lr; full: --encoder-lr-mult from the start."""
    from transferlab.engine.fabric import fabric_for
    from transferlab.options.translate import TranslateOptions
    from transferlab.tasks.translate.recipe import TranslateRecipe

    photos = make_class_folder(tmp_path / "d", {"photos": 8}) / "photos"
    rates = {}
    for strategy in ("gradual", "scratch", "full"):
        opts = TranslateOptions(strategy=strategy, steps=6, img_size=64, batch_size=4, decoder_width=8, lr=1e-3,
                                encoder_lr_mult=0.1, perceptual_weight=0.0)  # fmt: skip
        recipe = TranslateRecipe(photos, opts, fabric_for(opts), tmp_path / strategy)
        seen = []
        for step in range(6):
            recipe.step = step
            recipe._set_rates()
            seen.append([round(g["lr"], 6) for g in recipe.opt_g.param_groups])
        rates[strategy] = seen
        if strategy == "scratch":
            assert recipe.weights_source == "random init"
    assert rates["gradual"] == [[0.0, 1e-3]] * 2 + [[1e-4, 1e-3]] * 4
    assert rates["scratch"] == [[1e-3, 1e-3]] * 6
    assert rates["full"] == [[1e-4, 1e-3]] * 6
