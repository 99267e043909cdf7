"""`lr-find` and `--lr auto` (the LR finder) and `tune` (studies on Optuna: pruning, resume, several
workers on one SQLite file and on a real PostgreSQL server)."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import assert_user_error, make_class_folder, write_detection_set, write_segmentation_set
from transferlab import tune
from transferlab.engine.rate_finder import smooth, suggest
from transferlab.errors import UsageError
from zygote import CliProcess, start_cli

FAST = {"img_size": 32, "batch_size": 16, "epochs": 2, "warmup_epochs": 0.5, "backbone": "tf_efficientnet_lite0"}


def synthetic_curve(centre: float, width: float, n: int = 100, noise: float = 0.0, seed: int = 0):
    """A finder's curve: flat at small rates, falling around log10(rate) = centre - width/2 ..
    centre + width/2, then blowing up; returns the rates, the losses and the falling stretch."""
    rates = np.logspace(-7, 1, n)
    x = np.log10(rates)
    fall = 1 / (1 + np.exp(-(x - centre) * 8 / width))  # 0 -> 1 across the stretch
    blow = np.exp(np.clip(x - (centre + width), 0, None) * 4) - 1
    losses = 2.0 - 1.5 * fall + blow + np.random.default_rng(seed).normal(0, noise, n)
    return rates.tolist(), losses.tolist(), (10 ** (centre - width / 2), 10 ** (centre + width / 2))


@settings(max_examples=40, deadline=None)
@given(centre=st.floats(-5.0, -2.0), width=st.floats(1.0, 2.5), seed=st.integers(0, 10**6))
def test_the_valley_rule_suggests_a_rate_inside_the_falling_stretch(centre, width, seed):
    rates, losses, (low, high) = synthetic_curve(centre, width, noise=0.01, seed=seed)
    chosen, every = suggest(rates, smooth(losses), "valley")
    assert low / 3 <= chosen <= high * 3, (chosen, low, high)  # the smoothing lags the curve a little
    assert every["valley"] == chosen and set(every) == {"valley", "steep", "fall", "minimum"}
    assert low / 3 <= every["steep"] <= high * 3  # the steepest fall is near the stretch's middle
    # nine tenths of the fall come after the steepest point and before the lowest
    lowest = rates[int(np.argmin(smooth(losses)[10:-5])) + 10]
    assert every["steep"] <= every["fall"] <= lowest, every


def test_the_rules_on_a_known_curve():
    rates, losses, _ = synthetic_curve(-3.0, 2.0)
    smoothed = smooth(losses)
    steep, _ = suggest(rates, smoothed, "steep")
    minimum, _ = suggest(rates, smoothed, "minimum")
    fall, _ = suggest(rates, smoothed, "fall")
    # the smoothing lags a little behind the curve: the steepest fall is read within a factor 3 of 1e-3
    assert 1e-3 / 3 < steep < 1e-3 * 3
    lowest = rates[int(np.argmin(smoothed[10:-5])) + 10]
    assert math.isclose(minimum, lowest / 10)
    # the first rate where the smoothed loss has made nine tenths of its fall (from its flat start to
    # its lowest point): after the raw curve's own nine tenths, 10**(-3 + ln(9)/4) = 1.7e-2
    share = [(smoothed[10] - v) / (smoothed[10] - min(smoothed[10:-5])) for v in smoothed]
    at = rates.index(fall)
    assert 1.7e-2 <= fall < lowest and share[at] >= 0.9 > share[at - 1]
    assert smooth([1.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 1.0])  # bias-corrected: no pull toward 0


def test_a_curve_that_blows_up_at_once_is_refused():
    from transferlab.errors import TrainingError

    with pytest.raises(TrainingError, match="diverged"):
        suggest([1e-3, 1e-2, 1e-1], [1.0, 5.0, 50.0])


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """48 small images of three classes, as a folder (subprocess workers read it)."""
    return make_class_folder(tmp_path_factory.mktemp("photos"), {"red": 16, "green": 16, "blue": 16})


@pytest.mark.heavy(30)
def test_lr_auto_trains_exactly_the_run_of_the_suggested_rate(photos, tmp_path):
    """The sweep leaves nothing behind: `--lr auto` then trains from the very weights `--lr X`
    starts from (the same seed), so the two runs end bit for bit equal; the report shows the curve."""
    from safetensors.torch import load_file

    from transferlab.tasks import classify

    auto = classify.train(photos, out=tmp_path / "auto", lr="auto", **FAST)
    found = json.loads((auto.run_dir / "lr_find.json").read_text())
    assert 1e-7 < found["suggestion"] < 10 and len(found["losses"]) >= 10
    assert found["rule"] == "fall" and found["suggestion"] == found["others"]["fall"]  # classify's own rule
    run = json.loads((auto.run_dir / "run.json").read_text())
    assert run["options"]["lr"] == pytest.approx(found["suggestion"])
    given_rate = classify.train(photos, out=tmp_path / "given", lr=found["suggestion"], **FAST)
    a, b = load_file(auto.run_dir / "model.safetensors"), load_file(given_rate.run_dir / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    report = (auto.run_dir / "report.html").read_text()
    assert "Learning rate (--lr auto)" in report and "data:image/png;base64" in report


LR_FIND = {  # task -> (its data, options that keep the sweep small)
    "segment": (lambda root: write_segmentation_set(root, 12), "--img-size 32 --batch-size 4 --width 8"),
    "detect": (lambda root: write_detection_set(root, 8), "--img-size 64 --batch-size 4 --width 64"),
    "translate": (lambda root: make_class_folder(root, {"all": 12}), "--img-size 32 --batch-size 4 --decoder-width 8"),
}


@pytest.mark.parametrize("task", list(LR_FIND))
def test_lr_find_command_sweeps_each_tasks_own_training(task, tmp_path, cli):
    make, flags = LR_FIND[task]
    rule = ["--rule", "minimum"] if task == "translate" else []  # the others read the curve by their own rule
    code, out, err = cli("lr-find", task, make(tmp_path / "data"), *flags.split(), "--sweep-steps", "20", *rule,
                         "--json", "-o", tmp_path / "found")  # fmt: skip
    assert code == 0, err
    found = json.loads(out)
    assert found["rule"] == ("minimum" if rule else "steep") and found["suggestion"] == found["others"][found["rule"]]
    assert len(found["losses"]) >= 10 and 1e-7 <= found["suggestion"] <= 10
    assert found["rates"][0] == pytest.approx(1e-7) and found["rates"] == sorted(found["rates"])
    assert (tmp_path / "found" / "lr_find.png").stat().st_size > 5000


def test_the_sweep_sets_every_group_at_its_ratio_to_lr(photos):
    """The stand-in session sets each optimizer group at rate x its scale (a body at 0.1 of the head)."""
    from transferlab.engine.fabric import fabric_for
    from transferlab.engine.rate_finder import SweepSession, sweep_options
    from transferlab.options.classify import ClassifyOptions
    from transferlab.tasks.classify.train import ClassifyRecipe

    opts = sweep_options(ClassifyOptions(**FAST, body_lr_mult=0.1), 1e-7)
    recipe = ClassifyRecipe(photos, opts, fabric_for(opts), Path("unused"))
    scales = sorted({round(s, 6) for _, s in recipe.rate_groups()})
    assert scales[-1] == 1.0 and 0.1 in scales
    session = SweepSession(recipe, recipe.fabric, 1e-7, 10.0, 20, progress=type("P", (), {"advance": print})())
    session.check_finite(torch.tensor(2.0))
    for group, scale in recipe.rate_groups():
        assert group["lr"] == pytest.approx(1e-7 * scale)


def test_bad_rates_and_sweeps_are_refused(cli, photos):
    assert_user_error(cli("classify", photos, "--lr", "fast"), "--lr 'fast'", "--lr auto")
    assert_user_error(cli("classify", photos, "--lr", "-1"), "must be positive")
    assert_user_error(cli("lr-find", "classify", photos, "--start", "1", "--end", "0.1"), "--start", "--end")
    assert_user_error(cli("lr-find", "classify", photos, "--rule", "best"), "--rule 'best'")


# ---------------------------------------------------------------------------- tune


def _trials(db: Path, study: str) -> list:
    import optuna

    return optuna.load_study(study_name=study, storage=f"sqlite:///{db}").get_trials()


def test_a_study_runs_its_trials_and_writes_the_best(photos, tmp_path, cli):
    space = tmp_path / "space.yaml"
    space.write_text("lr: {low: 1e-3, high: 3e-3, log: true}\nstrategy: [full, llrd]\nimg_size: [32]\n")
    # without the pruner (its own test is below): every trial completes, whatever the scores
    code, out, err = cli("tune", "classify", photos, "--trials", "3", "--space", space, "--img-size", "32",
                         "--epochs", "1", "--batch-size", "16", "--pruner", "none", "--out", tmp_path / "study",
                         "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["complete"] == 3 and result["failed"] == 0 and result["defaults_value"] is not None
    root = tmp_path / "study"
    trials = _trials(root / "study.db", result["study"])
    assert [t.number for t in trials] == [0, 1, 2] and trials[0].user_attrs["defaults"] and not trials[0].params
    assert all("img_size" not in t.params for t in trials)  # given on the command line: fixed, out of the space
    assert all((root / f"trial-{t.number}" / "run.json").is_file() for t in trials)
    best = max(trials, key=lambda t: t.value)
    assert result["best_trial"] == best.number and result["best_value"] == pytest.approx(best.value)
    import yaml

    options = yaml.safe_load((root / "best.yaml").read_text())
    assert options["img_size"] == 32 and options["epochs"] == 1
    assert (root / "best" / "model.safetensors").is_file() and (root / "trials.csv").is_file()
    report = (root / "report.html").read_text()
    assert "Optimisation history" in report and "Trials" in report and report.count("data:image/png") >= 2
    # best.yaml is a config the task's command takes
    code, _, err = cli("classify", photos, "--config", root / "best.yaml", "-o", tmp_path / "again")
    assert code == 0, err


def test_the_pruner_stops_a_trial_that_falls_behind(photos, tmp_path):
    """Three finished trials (a linear probe at good rates learns the colours within an epoch; the
    defaults' 1e-3 does not), then trials at a rate that learns nothing: the median pruner stops
    them at their first scoring, and their runs stop there."""
    fixed = {**FAST, "epochs": 3, "batch_size": 8, "warmup_epochs": 0.0, "strategy": "linear"}
    root = tmp_path / "study"
    good = tune.tune("classify", photos, trials=3, space={"lr": {"low": 2e-2, "high": 5e-2}}, out=root,
                     pruner="none", **fixed)  # fmt: skip
    assert good.complete == 3 and good.pruned == 0 and good.best_value > 0.6
    bad = tune.tune("classify", photos, trials=5, space={"lr": {"low": 1e-9, "high": 2e-9}}, out=root, **fixed)
    assert bad.pruned == 2 and bad.complete == 3, bad
    trials = _trials(root / "study.db", good.study)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert [len(t.intermediate_values) for t in pruned] == [1, 1]
    rows = (root / f"trial-{pruned[0].number}" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 2  # the header and the one epoch before the scoring that pruned it
    assert "pruner stopped" in (root / "report.html").read_text()


def _worker(
    photos: Path, root: Path, trials: int, storage: str | None = None, epochs: int = 2, network: str = ""
) -> CliProcess:
    """A `transferlab tune` worker process; ``network``: e.g. a LeNet from scratch, whose trials take
    a fraction of the default's (the shared study, not the model, is under test)."""
    command = ["tune", "classify", str(photos), "--trials", str(trials),
               "--img-size", "32", "--batch-size", "16", "--epochs", str(epochs), "--out", str(root),
               "--study", "shared", "--space", str(root.parent / "space.yaml"), *network.split()]  # fmt: skip
    if storage:
        command += ["--storage", storage]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TRANSFERLAB_QUIET": "0", "TRANSFERLAB_PROGRESS_SECONDS": "1"}
    return start_cli(command, env, merge_stderr=True)


LENET = "--backbone lenet --strategy scratch"


def _space(tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("lr: {low: 1e-3, high: 3e-3, log: true}\n")


@pytest.mark.heavy(15)
def test_a_killed_worker_resumes_the_study_and_reruns_no_finished_trial(photos, tmp_path):
    _space(tmp_path)
    root, storage = tmp_path / "study", None
    worker = _worker(photos, root, 3, storage, epochs=4)
    deadline = time.time() + 300
    while time.time() < deadline:  # kill -9 once trial 1's run has a checkpoint (trial 0 is finished)
        if list((root / "trial-1" / "checkpoints").glob("*.safetensors")):
            break
        time.sleep(0.5)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    before = {t.number: t for t in _trials(root / "study.db", "shared")}
    assert before[0].state.name == "COMPLETE" and before[1].state.name == "RUNNING"
    again = _worker(photos, root, 3, storage, epochs=4)
    log, _ = again.communicate(timeout=600)
    assert again.returncode == 0, log
    after = _trials(root / "study.db", "shared")
    assert after[0].datetime_complete == before[0].datetime_complete  # finished: never rerun
    retry = [t for t in after if t.user_attrs.get("retry_of") == 1]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE" and retry[0].params == before[1].params
    assert retry[0].user_attrs["folder"] == str(root / "trial-1") and "resumed" in log  # the killed run resumed
    assert after[1].state.name == "FAIL"
    finished = [t for t in after if t.state.name in ("COMPLETE", "PRUNED")]  # the median pruner may stop one
    assert len(finished) == 3  # trial 0, the retry of 1, and one more


def _two_workers(photos: Path, root: Path, storage: str | None) -> list:
    workers = [_worker(photos, root, 4, storage, epochs=1, network=LENET) for _ in range(2)]
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), logs
    return logs


def test_two_workers_share_one_sqlite_study(photos, tmp_path):
    _space(tmp_path)
    root = tmp_path / "study"
    _two_workers(photos, root, None)
    trials = [t for t in _trials(root / "study.db", "shared") if not t.user_attrs.get("surplus")]
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.number for t in trials}) == 4 and len({t.user_attrs["pid"] for t in trials}) == 2  # both worked
    assert len({t.user_attrs["folder"] for t in trials}) == 4


CLAIM = """
import sys, time
import optuna
from transferlab.tune.study import _connect
optuna.logging.set_verbosity(optuna.logging.ERROR)
study = optuna.load_study(study_name="queued", storage=_connect(sys.argv[1]))
while time.time() < float(sys.argv[2]):
    pass
print(*(study.ask().number for _ in range(3)))
"""


def test_workers_that_ask_at_one_instant_never_claim_one_queued_trial_twice(tmp_path):
    """SQLite ignores FOR UPDATE: without serialised transactions two workers both took trial 0."""
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="queued", storage=url)
    for i in range(12):
        study.enqueue_trial({"x": i})
    start = time.time() + 4  # every process imported and connected: they ask together
    askers = [subprocess.Popen([sys.executable, "-c", CLAIM, url, str(start)], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONWARNINGS": "ignore"}) for _ in range(4)]  # fmt: skip
    claimed = [int(n) for a in askers for n in a.communicate(timeout=120)[0].split()]
    assert sorted(claimed) == list(range(12)), claimed


def _postgres_binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


@pytest.fixture
def postgres():
    """A real PostgreSQL server (Debian's `postgresql`) on a free local port, for this test only."""
    binaries = _postgres_binaries()
    if binaries is None:
        assert os.environ.get("CI") != "true", "CI must run the PostgreSQL test: .ci/run installs Debian's postgresql"
        pytest.skip("no PostgreSQL server binaries (apt-get install postgresql)")
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="transferlab-pg-"))  # not under pytest's folders: mode 700, root's
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root: Debian's package made a postgres user
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, binaries / "initdb", "-D", data / "db", "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)  # fmt: skip
    settings = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    start = [*as_user, binaries / "pg_ctl", "-D", data / "db", "-l", data / "log", "-w", "-o", settings, "start"]
    subprocess.run(start, check=True, capture_output=True)
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*as_user, binaries / "pg_ctl", "-D", data / "db", "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


@pytest.mark.heavy(15)
def test_two_workers_share_one_study_on_a_postgresql_server(photos, tmp_path, postgres):
    import optuna

    _space(tmp_path)
    _two_workers(photos, tmp_path / "study", postgres)
    trials = [t for t in optuna.load_study(study_name="shared", storage=postgres).get_trials()
              if not t.user_attrs.get("surplus")]  # fmt: skip
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.number for t in trials}) == 4 and len({t.user_attrs["pid"] for t in trials}) == 2


def test_every_tuned_task_logs_its_metric_and_its_space_fits_its_options():
    from transferlab.registry import TASKS
    from transferlab.tune.space import search_space

    tuned = [task for task in TASKS.values() if task.tuning is not None]
    assert {t.name for t in tuned} == {"classify", "distill", "segment", "detect", "translate"} == set(tune.tunable())
    for task in tuned:
        assert task.tuning.metric in task.recipe().metrics, task.name
        assert task.tuning.direction in ("maximize", "minimize")
        assert search_space(task.options, task.tuning.space, {}), task.name


def test_bad_studies_are_refused(photos, tmp_path, cli):
    space = tmp_path / "space.yaml"
    assert_user_error(cli("tune", "classify", photos, "--trials", "0"), "--trials 0")
    space.write_text("learning_rate: {low: 1e-4, high: 1e-2}\n")
    assert_user_error(cli("tune", "classify", photos, "--trials", "2", "--space", space), "learning_rate")
    space.write_text("lr: {low: 1e-2, high: 1e-4}\n")
    assert_user_error(cli("tune", "classify", photos, "--trials", "2", "--space", space), "empty range")
    space.write_text("strategy: []\n")
    assert_user_error(cli("tune", "classify", photos, "--trials", "2", "--space", space), "no choices")
    unreachable = "postgresql://nobody:secret@127.0.0.1:1/none"
    result = cli("tune", "classify", photos, "--trials", "2", "--storage", unreachable)
    assert_user_error(result, "cannot be reached", "start the database")
    assert "secret" not in result[2]  # the password is not shown
    assert_user_error(cli("tune", "classify", photos, "--trials", "2", "--devices", "2"), "one process")
    code, _, err = cli("tune", "paint", photos, "--trials", "2")
    assert code == 2 and "No such command 'paint'" in err
    with pytest.raises(UsageError, match="not a task that can be tuned"):
        tune.tune("gan", photos, trials=2)
