"""Data-parallel runs of every training task, as a user starts them (``--devices 2`` on the CPU,
gloo): the ranks draw disjoint shares whose union is the one-process batch, only rank 0 writes,
and a stop request ends even a run whose other process is stuck."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import make_class_folder, write_detection_set, write_image, write_segmentation_set
from transferlab.engine.batches import BatchDraw
from transferlab.engine.performance import for_inference
from transferlab.engine.session import _child_processes
from transferlab.options.segment import SegmentOptions
from transferlab.tasks.segment.data import load_segmentation
from zygote import run_cli, start_cli

#: Installed in every process Fabric starts for ranks > 0 (LOCAL_RANK is set for them only): an
#: audit hook that records each file opened for writing, renamed, linked or made below WATCH.
WRITE_WATCH = """
import os, sys
if os.environ.get("LOCAL_RANK", "0") != "0" and os.environ.get("TRANSFERLAB_TEST_WRITES"):
    _log = open(os.environ["TRANSFERLAB_TEST_WRITES"], "a", buffering=1)
    _root = os.path.realpath(os.environ["TRANSFERLAB_TEST_WATCH"])
    _log.write(f"watching rank {os.environ['LOCAL_RANK']}\\n")
    _writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            if not ((isinstance(mode, str) and any(c in mode for c in "wax+")) or (flags or 0) & _writing):
                return
            paths = [path]
        elif event in ("os.rename", "os.replace", "os.link", "os.symlink"):
            paths = [args[0], args[1]]
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "os.truncate", "os.utime"):
            paths = [args[0]]
        else:
            return
        for p in paths:
            if isinstance(p, (str, bytes, os.PathLike)) and not isinstance(p, int):
                p = os.fsdecode(p)
                if os.path.realpath(p).startswith(_root):
                    _log.write(f"{event} {p}\\n")

    sys.addaudithook(_hook)
"""


def interleave(shares: list[torch.Tensor]) -> torch.Tensor:
    """The global batch back from the ranks' shares (rank r holds rows r, r + N, ...)."""
    world = len(shares)
    rows = sum(len(s) for s in shares)
    out = torch.empty((rows, *shares[0].shape[1:]), dtype=shares[0].dtype)
    for rank, part in enumerate(shares):
        out[rank::world] = part
    return out


@given(batch=st.integers(1, 40), world=st.integers(1, 5), population=st.integers(1, 100))
@settings(max_examples=40, deadline=None)
def test_the_ranks_shares_are_disjoint_and_together_the_one_process_batch(batch, world, population):
    def draws(d: BatchDraw) -> list[torch.Tensor]:
        return [d.indices(population), d.normal(3), d.uniform(2), d.integers(0, 9, 2), d.flips()]

    whole = draws(BatchDraw.for_step(11, 5, batch))
    ranks = [draws(BatchDraw(BatchDraw.for_step(11, 5, batch).generator, batch, r, world)) for r in range(world)]
    assert sum(len(r[0]) for r in ranks) == batch
    for kind, one_process in enumerate(whole):
        assert torch.equal(interleave([r[kind] for r in ranks]), one_process)


def rank_draws(batch_size: int, world: int, seed: int = 3, step: int = 5) -> list[BatchDraw]:
    return [BatchDraw(BatchDraw.for_step(seed, step, batch_size).generator, batch_size, r, world) for r in range(world)]


def test_gan_images_latents_and_augmentation_are_shared_by_rank(tmp_path):
    from transferlab.options.gan import GanOptions
    from transferlab.tasks.gan.augment import DiffAugment
    from transferlab.tasks.gan.train import RealImages

    folder = tmp_path / "faces"
    for i in range(12):
        write_image(folder / f"{i}.png", (20 * i, 100, 200 - 10 * i), size=(20, 20))
    real = RealImages(folder, GanOptions(img_size=32, xflip=True), torch.device("cpu"))
    augment = DiffAugment()

    def step(draw: BatchDraw) -> tuple[torch.Tensor, ...]:
        x, labels = real.batch(draw)
        z = draw.normal(16)
        return x, labels, z, augment(x, draw)

    one = step(rank_draws(10, 1)[0])
    two = [step(d) for d in rank_draws(10, 2)]
    for kind in range(4):
        assert torch.equal(interleave([t[kind] for t in two]), one[kind])


def test_translate_pairs_are_shared_by_rank(tmp_path):
    from transferlab.options.translate import TranslateOptions
    from transferlab.tasks.translate.data import load_pairs

    photos = make_class_folder(tmp_path / "photos", {"all": 16})
    for task in ("inpaint", "denoise"):
        opts = TranslateOptions(task=task, img_size=32, batch_size=6)
        pairs = load_pairs(photos, task, 32, 0, 0.25)
        one = pairs.train_batch(rank_draws(6, 1)[0], task, opts)
        two = [pairs.train_batch(d, task, opts) for d in rank_draws(6, 2)]
        for kind in range(2):
            assert torch.equal(interleave([t[kind] for t in two]), one[kind]), task


@pytest.mark.parametrize("crop", [{}, {"crop": "frame", "scales": "1,1"}, {"corrupt": 1.0}])
def test_segmentation_crops_are_shared_by_rank(tmp_path, crop):
    from transferlab.engine.batches import BatchDraw as Draw
    from transferlab.tasks.segment.recipe import SegmentRecipe

    recipe = SegmentRecipe.__new__(SegmentRecipe)  # only its batch drawing, without networks
    recipe.data = load_segmentation(write_segmentation_set(tmp_path / "s", 6))
    recipe.opts = SegmentOptions(img_size=32, batch_size=5, **crop)
    recipe.fabric = type("CpuFabric", (), {"device": torch.device("cpu")})()
    recipe.performance = for_inference("cpu")
    one = recipe.batch(rank_draws(5, 1)[0])
    two = [recipe.batch(d) for d in rank_draws(5, 2)]
    assert isinstance(rank_draws(5, 2)[0], Draw)
    for kind in range(2):
        assert torch.equal(interleave([t[kind] for t in two]), one[kind])


def test_detection_images_and_boxes_are_shared_by_rank(tmp_path):
    from transferlab.options.detect import DetectOptions
    from transferlab.tasks.detect.data import load_detection
    from transferlab.tasks.detect.recipe import DetectRecipe, shrunk

    recipe = DetectRecipe.__new__(DetectRecipe)  # only its batch drawing, without networks
    recipe.data = load_detection(write_detection_set(tmp_path / "d", 7))
    recipe.opts = DetectOptions(img_size=64, batch_size=5)
    recipe.images, recipe.boxes = shrunk(recipe.data.train, 80)
    recipe.fabric = type("CpuFabric", (), {"device": torch.device("cpu")})()
    images, targets = recipe.batch(rank_draws(5, 1)[0])
    shares = [recipe.batch(d) for d in rank_draws(5, 2)]
    order = [(r, i) for i in range(3) for r in range(2) if i < len(shares[r][0])]  # rows r, r + 2, ...
    assert len(order) == len(images) == 5
    for (rank, i), image, target in zip(order, images, targets):
        assert torch.equal(shares[rank][0][i], image)
        assert torch.equal(shares[rank][1][i]["boxes"], target["boxes"])
        assert torch.equal(shares[rank][1][i]["labels"], target["labels"])


def test_style_crops_are_shared_by_rank(tmp_path):
    from transferlab.tasks.stylize.feedforward import ContentBatches

    content = make_class_folder(tmp_path / "content", {"all": 5})
    batches = ContentBatches(content, 32)
    one = batches.batch(rank_draws(5, 1)[0])
    assert torch.equal(interleave([batches.batch(d) for d in rank_draws(5, 2)]), one)


# ------------------------------------------------------------------------------ real two-process runs


def _datasets(root: Path) -> dict[str, Path]:
    classes = make_class_folder(root / "classes", {"a": 12, "b": 12})
    target = make_class_folder(root / "target", {"a": 10, "b": 10})
    write_image(root / "style.png", (30, 90, 200), size=(64, 64))
    scenes = write_segmentation_set(root / "scenes", 10)
    shapes = write_detection_set(root / "shapes", 10)
    return {"classes": classes, "target": target, "style": root / "style.png", "scenes": scenes, "shapes": shapes}


TWO = ["--accelerator", "cpu", "--devices", "2"]
COMMANDS = {
    # classify after the LR finder's sweep on both ranks: the mean loss decides for both (a rank that
    # stopped alone would hang); gradual unfreezing leaves the body without gradients in its first
    # epoch, which DDP must be told; the trained head is matched to one process's below
    "classify-lr-auto": "classify {classes} --strategy gradual --img-size 32 --epochs 1 --batch-size 8 --lr auto",
    "gan": "gan train {classes} --arch dcgan --img-size 32 --width 8 --steps 6 --batch-size 8 --eval-every 3 "
    "--fid-samples 16 --fid-features lite0 --sample-every 3 --checkpoint-every 3",
    "translate": "translate train {classes} --task colorize --img-size 32 --steps 4 --batch-size 4 --eval-every 2 "
    "--decoder-width 8 --perceptual-weight 0.1",
    "stylize": "stylize train {style} --content {classes} --steps 4 --train-size 48 --style-size 64 --batch-size 2 "
    "--width 8 --blocks 1",
    "autoencoder": "autoencoder pretrain {classes} --img-size 32 --steps 4 --batch-size 8 --checkpoint-every 2",
    "adapt": "adapt --source {classes} --target {target} --method dann --epochs 1 --iters-per-epoch 4 --batch-size 8",
    # a time budget the first epoch spends: rank 0's cut must reach rank 1, or it waits in epoch 2
    "segment": "segment train {scenes} --img-size 64 --epochs 3 --batch-size 4 --width 8 --time-budget 0.0001",
    "detect": "detect train {shapes} --img-size 64 --epochs 2 --batch-size 4 --width 64 --eval-every 1",
}


def two_process_env(tmp_path: Path, watch: Path) -> tuple[dict[str, str], Path]:
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(WRITE_WATCH)
    log = tmp_path / "rank1-writes.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")]),
           "TRANSFERLAB_TEST_WRITES": str(log), "TRANSFERLAB_TEST_WATCH": str(watch)}  # fmt: skip
    return env, log


def assert_same_head_as_one_process(command: list[str], two: Path, one: Path) -> None:
    """In its first epoch gradual unfreezing trains the head alone, on features without BatchNorm
    updates, and the gradients of two half-batches average to the full batch's: the head (and the
    rate the sweep found) must equal those of the same command on one process, run here."""
    from safetensors.torch import load_file

    from transferlab.cli.main import main

    assert main([*command, "--accelerator", "cpu", "--devices", "1", "--out", str(one)]) == 0
    found = [json.loads((run / "lr_find.json").read_text())["suggestion"] for run in (one, two)]
    assert found[0] == pytest.approx(found[1], rel=1e-6)
    heads = [load_file(str(run / "model.safetensors")) for run in (one, two)]
    for key in ("classifier.weight", "classifier.bias"):
        assert torch.allclose(heads[0][key], heads[1][key], atol=1e-5), key


@pytest.mark.heavy(18)
@pytest.mark.parametrize("task", list(COMMANDS))
def test_a_two_process_run_trains_and_only_rank_0_writes(task, tmp_path):
    data = _datasets(tmp_path / "data")
    out = tmp_path / "out"
    env, log = two_process_env(tmp_path, out)
    command = COMMANDS[task].format(**data).split()
    args = command + TWO + ["--out", str(out)]
    done = run_cli(args, env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "watching rank 1" in log.read_text(), "the second process was not started or not watched"
    assert log.read_text().splitlines()[1:] == [], f"rank 1 wrote into the run:\n{log.read_text()}"
    assert list(out.rglob("run.json")), f"no run written: {sorted(out.rglob('*'))}"
    said = [line for line in done.stdout.splitlines() if line.startswith("report:")]
    assert len(said) <= 1, done.stdout  # the result is printed once, by rank 0
    if "auto" in args:
        assert (out / "lr_find.json").is_file() and (out / "lr_find.png").is_file()
    if task == "classify-lr-auto":
        assert_same_head_as_one_process(command, out, tmp_path / "one")
    if "--time-budget" in args:
        assert len((out / "metrics.csv").read_text().splitlines()) == 2  # one epoch of the three, on both ranks


@pytest.mark.heavy(21)
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find rank 1")
def test_sigterm_ends_a_run_whose_other_rank_is_stuck_keeping_the_last_checkpoint(tmp_path):
    """Rank 1 is frozen (SIGSTOP: it never joins the next collective); rank 0 blocks in it. SIGTERM
    to rank 0 must still end the run within the grace period, exit 75, and leave the checkpoint."""
    data = _datasets(tmp_path / "data")
    out = tmp_path / "out"
    args = (f"autoencoder pretrain {data['classes']} --img-size 32 --steps 100000 --batch-size 8 "
            "--checkpoint-every 2").split() + TWO + ["--out", str(out)]  # fmt: skip
    env = {**os.environ, "TRANSFERLAB_STOP_GRACE": "5"}
    run = start_cli(args, env)
    checkpoint = out / "checkpoints" / "last.safetensors"
    try:
        deadline = time.monotonic() + 240
        while not checkpoint.is_file() and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)
        assert checkpoint.is_file(), run.output() if run.poll() is not None else "no checkpoint in time"
        ranks = _child_processes(run.pid)
        assert ranks, "rank 1 was not found"
        for pid in ranks:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(2)  # rank 0 is now waiting in a collective
        stopped_at = time.monotonic()
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
        assert time.monotonic() - stopped_at < 30
        assert run.returncode == 75, err[-2000:]
        assert "stop request was not answered" in err and "--resume" in err
        time.sleep(0.5)
        for pid in ranks:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        from transferlab.engine.checkpoint import load_checkpoint

        assert load_checkpoint(checkpoint)["step"] >= 2  # the last good state is whole
    finally:
        if run.poll() is None:
            run.kill()
        for pid in _child_processes(run.pid) if run.poll() is None else []:
            os.kill(pid, signal.SIGKILL)


def test_sigterm_ends_a_run_stuck_in_its_data_loader(tmp_path):
    """A data-loader worker that stops answering (SIGSTOP) leaves the loop waiting for a batch that
    never comes; SIGTERM must still end the run within the grace period, with exit 75."""
    many = make_class_folder(tmp_path / "many", {"a": 150, "b": 150})  # long epochs: the worker stops mid-epoch
    out = tmp_path / "out"
    flags = "--backbone resnet10t --strategy scratch --img-size 32 --epochs 500 --batch-size 4 --no-resident"
    args = ["classify", str(many), *flags.split(), "--workers", "1", "--accelerator", "cpu", "--out", str(out)]
    env = {**os.environ, "TRANSFERLAB_STOP_GRACE": "5"}
    run = start_cli(args, env)
    try:
        deadline = time.monotonic() + 240
        while not (out / "metrics.csv").is_file() and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)
        time.sleep(1)
        workers = _child_processes(run.pid)
        assert workers and run.poll() is None, "no data-loader worker was found"
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(1)
        stopped_at = time.monotonic()
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
        assert time.monotonic() - stopped_at < 30
        assert run.returncode == 75, err[-2000:]
        assert "stop request was not answered" in err
    finally:
        if run.poll() is None:
            run.kill()
        for pid in _child_processes(run.pid) if run.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
