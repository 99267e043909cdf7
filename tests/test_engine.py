"""The training engine under faults, for every task that trains: kill -9 at random moments then
resume (weights bitwise equal to an uninterrupted run), SIGTERM (checkpoint, exit 75, exact
resume), a full disk mid-checkpoint, damaged checkpoints, a second process on the same run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from conftest import assert_user_error, write_segmentation_set
from transferlab.engine.checkpoint import load_checkpoint
from transferlab.engine.session import PREEMPTED_EXIT, checkpoint_path, duration_sentence
from zygote import run_cli, start_cli


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """scikit-learn's 1,797 real 8x8 handwritten digits as a class folder."""
    root = tmp_path_factory.mktemp("digits")
    data = load_digits()
    for i, (image, label) in enumerate(zip(data.images, data.target)):
        (root / str(label)).mkdir(exist_ok=True)
        Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(root / str(label) / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    from skimage import data as skdata

    root = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        Image.fromarray(getattr(skdata, name)()).save(root / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return write_segmentation_set(tmp_path_factory.mktemp("scenes"), 8)


def _commands(digits: Path, photos: Path, run: Path, scenes: Path) -> dict[str, tuple[list[str], str]]:
    """Per task: the training command (small, a few seconds) and the checkpoint key of its weights."""
    return {
        "classify": (["classify", digits, "--backbone", "lenet", "--strategy", "scratch", "--epochs", "4",
                      "--batch-size", "32", "--out", run], "model"),
        "gan": (["gan", "train", digits, "--arch", "dcgan", "--img-size", "32", "--width", "8", "--batch-size", "16",
                 "--steps", "100", "--checkpoint-every", "10", "--eval-every", "0", "--sample-every", "0",
                 "--out", run], "weights"),
        "stylize": (["stylize", "train", photos / "chelsea.png", "--content", photos, "--train-size", "32",
                     "--style-size", "64", "--steps", "50", "--batch-size", "2", "--width", "8", "--blocks", "1",
                     "--checkpoint-every", "5", "--out", run], "model"),
        "adapt": (["adapt", "--source", digits, "--target", digits, "--method", "dann", "--epochs", "3",
                   "--iters-per-epoch", "20", "--batch-size", "32", "--out", run], "network"),
        "translate": (["translate", "train", photos, "--task", "denoise", "--img-size", "32", "--steps", "40",
                       "--batch-size", "2", "--eval-every", "0", "--checkpoint-every", "4", "--decoder-width", "8",
                       "--perceptual-weight", "0", "--out", run], "generator"),
        "autoencoder": (["autoencoder", "pretrain", digits, "--img-size", "32", "--steps", "80", "--batch-size", "16",
                         "--checkpoint-every", "5", "--out", run], "model"),
        "segment": (["segment", "train", scenes, "--img-size", "32", "--epochs", "12", "--batch-size", "2",
                     "--width", "8", "--backbone", "resnet10t:random", "--accelerator", "cpu", "--out", run], "model"),
    }  # fmt: skip


def _weights(run: Path, task: str, key: str) -> dict[str, torch.Tensor]:
    folder = run / "dann-seed0" if task == "adapt" else run
    state = load_checkpoint(checkpoint_path(folder))
    return state[key]


def _resume_args(task: str, args: list, run: Path) -> list:
    if task == "adapt":
        return ["adapt", "--resume", run]
    head = args[: args.index("--out")]
    return [*head, "--resume", run]


def _checkpointed(task: str, run: Path) -> Path:
    return checkpoint_path(run / "dann-seed0" if task == "adapt" else run)


# A process killed outright: once for a study of runs over loaders (adapt: its finished runs kept, the
# stopped one resumed) and once for the recipe contract's epochs of drawn batches (segment). The
# atomic checkpoint and the resume they test are the engine's, shared by every task; classify's own
# process-level resume is the SIGTERM test below, and every other recipe's state() and restore() are
# checked in process below and in its own tests (gan, stylize, translate).
@pytest.mark.heavy(35)
@pytest.mark.parametrize("task", ["adapt", "segment"])
def test_kill_9_at_random_moments_then_resume_equals_an_uninterrupted_run(task, digits, photos, scenes, tmp_path, cli):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    args, key = _commands(digits, photos, reference, scenes)[task]
    code, _, err = cli(*args)
    assert code == 0, err
    args = _commands(digits, photos, killed, scenes)[task][0]
    env = {**os.environ, "TRANSFERLAB_QUIET": "1"}
    moments = random.Random(f"kill-{task}")  # fixed per task: a failure can be replayed
    kills = 0
    for attempt in range(2):  # killed twice: the second time a resumed run
        process = start_cli(args if attempt == 0 and not _checkpointed(task, killed).exists() else
                         _resume_args(task, args, killed), env)  # fmt: skip
        seen = _checkpointed(task, killed).stat().st_mtime_ns if _checkpointed(task, killed).exists() else 0
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:  # wait for new progress on disk
            path = _checkpointed(task, killed)
            if path.exists() and path.stat().st_mtime_ns != seen:
                break
            time.sleep(0.02)
        time.sleep(moments.uniform(0.0, 0.5))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills == 2, "the runs ended before they could be killed: make them longer"
    finish = run_cli(_resume_args(task, args, killed), env, timeout=300)
    assert finish.returncode == 0, finish.stderr[-2000:]
    expected, got = _weights(reference, task, key), _weights(killed, task, key)
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected), [
        k for k in expected if not torch.equal(expected[k], got[k])
    ][:3]


@pytest.mark.parametrize("task", ["autoencoder", "detect"])
def test_a_stopped_run_resumes_to_the_uninterrupted_weights(task, digits, tmp_path):
    from conftest import write_detection_set
    from transferlab.tasks import autoencoder, detect

    if task == "autoencoder":
        train, data, key = autoencoder.pretrain, digits, "model"
        options = {"img_size": 32, "steps": 12, "batch_size": 16, "checkpoint_every": 4}
    else:
        train, data, key = detect.train, write_detection_set(tmp_path / "shapes", 8), "model"
        options = {"img_size": 64, "epochs": 3, "batch_size": 2, "width": 64, "eval_every": 1, "accelerator": "cpu"}
    train(data, out=tmp_path / "whole", **options)
    train(data, out=tmp_path / "part", stop_after=1, **options)
    assert not (tmp_path / "part" / "report.html").exists()  # stopped before the end
    train(data, resume=tmp_path / "part")
    a = load_checkpoint(checkpoint_path(tmp_path / "whole"))[key]
    b = load_checkpoint(checkpoint_path(tmp_path / "part"))[key]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.heavy(19)
def test_sigterm_mid_epoch_checkpoints_exits_75_and_resumes_exactly(digits, tmp_path, cli):
    run, reference = tmp_path / "run", tmp_path / "reference"
    args = ["classify", digits, "--backbone", "lenet", "--strategy", "scratch", "--epochs", "2", "--batch-size", "16"]
    assert cli(*args, "--out", reference)[0] == 0
    env = {**os.environ, "TRANSFERLAB_QUIET": "0", "TRANSFERLAB_PROGRESS_SECONDS": "0"}
    process = start_cli([*args, "--out", run], env)
    assert process.wait_for("epoch 2/2"), process.output()  # plain progress lines: inside the second epoch
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == PREEMPTED_EXIT, err[-2000:]
    assert "SIGTERM" in err and "--resume" in err and "Traceback" not in err
    state = load_checkpoint(checkpoint_path(run))
    assert state["epoch"] == 1 and state["batch_in_epoch"] > 0  # stopped mid-epoch, checkpointed there
    assert cli("classify", digits, "--resume", run)[0] == 0
    a, b = load_checkpoint(checkpoint_path(reference))["model"], load_checkpoint(checkpoint_path(run))["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(digits, tmp_path, monkeypatch):
    import errno

    from transferlab.engine import session as session_module
    from transferlab.errors import TrainingError
    from transferlab.tasks import gan

    original, calls = session_module.save_checkpoint, []

    def fill_the_disk(path, state):
        calls.append(path)
        if len(calls) == 2:
            Path(path).write_bytes(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        original(path, state)

    monkeypatch.setattr(session_module, "save_checkpoint", fill_the_disk)
    options = {"arch": "dcgan", "img_size": 32, "width": 8, "batch_size": 8, "steps": 6, "checkpoint_every": 2,
               "eval_every": 0, "sample_every": 0}  # fmt: skip
    with pytest.raises(TrainingError, match="No space left on device") as info:
        gan.train(digits, out=tmp_path / "run", **options)
    assert "previous checkpoint" in info.value.remedy
    assert load_checkpoint(checkpoint_path(tmp_path / "run"))["step"] == 2  # the last good one, intact


def test_a_whole_last_checkpoint_exists_at_every_moment_of_the_rotation(tmp_path, monkeypatch):
    """A watcher (or serve) reading last.safetensors mid-rotation must never find it missing."""
    from transferlab.engine.session import write_checkpoint

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    last, original, seen = checkpoint_path(run), os.replace, []

    def watch(src, dst):
        if last.exists():
            seen.append(load_checkpoint(last)["step"])
        original(src, dst)
        assert last.exists(), f"last.safetensors missing after moving {src} -> {dst}"

    def state(step: int) -> dict:
        return {"task": "gan", "step": step, "weights": torch.full((3,), float(step))}

    write_checkpoint(run, state(1))
    monkeypatch.setattr(os, "replace", watch)
    for step in (2, 3):
        write_checkpoint(run, state(step))
    assert load_checkpoint(last)["step"] == 3 and load_checkpoint(last.with_name("previous.safetensors"))["step"] == 2
    assert seen and all(s in (1, 2) for s in seen)


def test_damaged_checkpoints_fall_back_then_fail_clearly(digits, tmp_path, cli):
    run = tmp_path / "run"
    base = ["gan", "train", digits, "--arch", "dcgan", "--img-size", "32", "--width", "8", "--batch-size", "8",
            "--eval-every", "0", "--sample-every", "0", "--checkpoint-every", "2"]  # fmt: skip
    assert cli(*base, "--steps", "4", "--out", run)[0] == 0
    last = checkpoint_path(run)
    last.write_bytes(last.read_bytes()[:1000])  # truncated
    code, _, err = cli(*base, "--steps", "6", "--resume", run)
    assert code == 0 and "resuming from the previous checkpoint" in err, err
    assert load_checkpoint(last)["step"] == 6
    for name in ("last.safetensors", "previous.safetensors"):
        (last.parent / name).write_bytes(b"not a checkpoint")
    assert_user_error(cli(*base, "--resume", run), "last.safetensors", "is damaged")


def test_a_second_process_on_the_same_run_is_refused(digits, tmp_path, cli):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from filelock import FileLock; import time; lock = FileLock({str(run / '.lock')!r});"
         "lock.acquire(); print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == b"held"
        args = ("--arch", "dcgan", "--img-size", "32", "--steps", "2", "--eval-every", "0", "--sample-every", "0")
        result = cli("gan", "train", digits, *args, "--out", run)
        assert_user_error(result, "another process is training into")
        assert not (run / "metrics.csv").exists() and not (run / "checkpoints").exists()  # nothing interleaved
    finally:
        holder.kill()


def test_plain_progress_lines_without_a_terminal(digits, tmp_path):
    env = {**os.environ, "TRANSFERLAB_QUIET": "0", "TRANSFERLAB_PROGRESS_SECONDS": "0.2"}
    args = ["autoencoder", "pretrain", digits, "--steps", "12", "--batch-size", "16", "--out", tmp_path / "ae"]
    done = run_cli(args, env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("pretraining autoencoder:")]
    assert len(lines) >= 2 and "/12" in lines[-1] and "ETA" in lines[0] and "loss" in lines[-1]
    assert "\x1b[" not in done.stderr  # no terminal control codes in a log file


def test_metrics_log_is_cut_back_to_the_checkpoint_on_resume(digits, tmp_path):
    import csv

    from transferlab.tasks import autoencoder

    options = {"steps": 10, "batch_size": 8, "checkpoint_every": 4}
    autoencoder.pretrain(digits, out=tmp_path / "ae", stop_after=6, **options)  # checkpoints at 4 and 6
    rows = list(csv.DictReader((tmp_path / "ae" / "metrics.csv").read_text().splitlines()))
    assert [r["step"] for r in rows] == [str(i) for i in range(1, 7)]
    result = autoencoder.pretrain(digits, resume=tmp_path / "ae", **options)
    rows = list(csv.DictReader((tmp_path / "ae" / "metrics.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == list(range(1, 11)) and len(result.losses) == 10


def test_a_resumed_run_refuses_a_changed_option_and_takes_a_resumable_one(digits, tmp_path, cli):
    from conftest import assert_user_error

    run = tmp_path / "ae"
    base = ["autoencoder", "pretrain", digits, "--img-size", "32", "--batch-size", "8"]
    from transferlab.tasks import autoencoder

    autoencoder.pretrain(digits, out=run, img_size=32, batch_size=8, steps=6, checkpoint_every=2, stop_after=2)
    assert_user_error(cli(*base, "--lr", "0.1", "--resume", run), "trained with lr 0.001", "leave out --lr")
    code, _, err = cli(*base, "--steps", "8", "--checkpoint-every", "4", "--accelerator", "cpu", "--resume", run)
    assert code == 0, err
    assert load_checkpoint(checkpoint_path(run))["step"] == 8  # the budget grew, the checkpoint interval changed


def test_config_file_and_a_run_as_config(digits, tmp_path, cli):
    config = tmp_path / "ae.yaml"
    config.write_text("steps: 3\nbatch-size: 8\nimg_size: 32\n")
    assert cli("autoencoder", "pretrain", digits, "--config", config, "--out", tmp_path / "a")[0] == 0
    import json

    first = json.loads((tmp_path / "a" / "run.json").read_text())["options"]
    assert first["steps"] == 3 and first["batch_size"] == 8
    assert (
        cli("autoencoder", "pretrain", digits, "--config", tmp_path / "a", "--steps", "4", "--out", tmp_path / "b")[0]
        == 0
    )
    second = json.loads((tmp_path / "b" / "run.json").read_text())["options"]
    assert second == {**first, "steps": 4}
    config.write_text("stepz: 3\n")
    assert_user_error(cli("autoencoder", "pretrain", digits, "--config", config), "unknown option(s): stepz")
    config.write_text("steps: [\n")
    assert_user_error(cli("autoencoder", "pretrain", digits, "--config", config), "not valid YAML/JSON")
    assert_user_error(cli("classify", digits, "--optimizer", "adamx"), "'adamx' is not one of the choices", "sgd")


def test_tensorboard_logger_writes_events(digits, tmp_path, cli):
    assert cli("autoencoder", "pretrain", digits, "--steps", "3", "--batch-size", "8", "--logger", "tensorboard",
               "--out", tmp_path / "ae")[0] == 0  # fmt: skip
    assert list((tmp_path / "ae" / "tensorboard").rglob("events.out.tfevents.*"))


def test_epoch_ends_close_together_are_checkpointed_once_and_the_fit_end_always(tmp_path, monkeypatch):
    """An epoch's end under CHECKPOINT_SPACING_SECONDS after the last checkpoint is skipped (a small
    set's epochs are shorter than the writing), the fit's end writes the skipped one; an explicit
    --checkpoint-every is never skipped."""
    import types

    from transferlab.engine import session as session_module
    from transferlab.engine.session import RunSpec, TrainingSession

    now = [100.0]  # the session's clock, moved by hand
    monkeypatch.setattr(
        session_module, "time", types.SimpleNamespace(monotonic=lambda: now[0], perf_counter=time.perf_counter)
    )
    writes: list[int] = []
    original = session_module.write_checkpoint

    def counted(run_dir: Path, state: dict) -> None:
        writes.append(state["progress"])
        original(run_dir, state)

    monkeypatch.setattr(session_module, "write_checkpoint", counted)
    spec = RunSpec("classify", tmp_path / "run", data="d")
    state = {"weights": torch.zeros(2)}
    with TrainingSession(spec, object(), total=10, title="t", checkpoint_every=0) as session:
        for epoch in range(1, 6):  # five epochs of 0.5 s: the first is written, then one 2 s later
            now[0] += 0.5
            session.step_boundary(epoch, lambda: state, last=True, log_position=epoch)
        assert writes == [1, 5]
        for epoch in range(6, 8):  # 6 is skipped; the fit ends at 7, skipped too, and flush writes it
            now[0] += 0.5
            session.step_boundary(epoch, lambda: state, last=True, log_position=epoch)
        session.flush()
        assert writes == [1, 5, 7]
        assert load_checkpoint(checkpoint_path(tmp_path / "run"))["progress"] == 7
        session.flush()  # nothing left unsaved
        assert writes == [1, 5, 7]
        now[0] += 0.5
        session.step_boundary(8, lambda: state, last=True, log_position=8)  # skipped
        session.advance(steps=1)  # a step past it (a fit stopped mid-epoch): its state is no longer whole
        session.flush()
        assert writes == [1, 5, 7]
    with TrainingSession(spec, object(), total=10, title="t", checkpoint_every=1) as session:
        writes.clear()
        for step in range(1, 4):  # --checkpoint-every: every one, however close together
            session.step_boundary(step, lambda: state, log_position=step)
        assert writes == [1, 2, 3]


def test_the_rest_of_a_run_is_announced_only_when_it_takes_a_while():
    assert duration_sentence("classify", 94.0, 59) is None  # well under a second: the bar's ETA says it
    assert (
        duration_sentence("segment", 2.0, 100) == "segment: 2.00 steps/s here: the remaining 100 steps take about 50 s"
    )
    assert duration_sentence("gan", 9.38, 779, "FID/KID at 1 point(s)").endswith(
        "about 83 s, plus FID/KID at 1 point(s)"
    )
    assert duration_sentence("detect", 0.5, 600).endswith("take about 20.0 min")
    assert duration_sentence("gan", 100.0, 50, "FID/KID at 2 point(s)") is not None  # scoring still to come


FAULTS_PROBE = """
import resource, sys, torch
from transferlab.engine import memory
def faults():  # minor page faults of allocating and filling a 64 MiB block after one was freed
    torch.empty(16 << 20).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(16 << 20).fill_(2.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults(), memory.keep_freed_memory(), *[faults() for _ in range(8)])  # the heap grows at first
"""


def test_training_and_inference_reuse_freed_memory_without_page_faults():
    """glibc hands a freed 64 MiB block back to the system, so filling the next one faults every
    page in again; after keep_freed_memory (every run and inference calls it) the next one reuses
    the kept memory. In a fresh process: the pytest worker has trained already."""
    done = subprocess.run([sys.executable, "-c", FAULTS_PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    before, applies, *_, after = done.stdout.split()
    pages = (64 << 20) // 4096
    assert applies == "True"
    assert int(before) > pages // 2 and int(after) < pages // 20, done.stdout
