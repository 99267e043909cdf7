"""A tuning study on Optuna: trials are ordinary runs of a task, the study lives in a database.

Each worker (one ``transferlab tune`` process; start several on one ``--storage`` to share the
work) loops: ask the study for a trial, train it as ``ROOT/trial-N`` with the fixed options and
the sampled ones, report every held-out score the run logs (the pruner may stop it there), tell
the study the run's objective. The study ends at ``trials`` counted trials across all workers.

What survives a killed worker: the study (every finished trial is in the database and is never
rerun) and the killed trial's run folder with its last checkpoint. A trial left ``RUNNING`` by a
process that is gone (on this machine: its pid no longer lives; elsewhere: no heartbeat for
``GRACE_SECONDS``) is marked failed and queued again with the same options, and the new trial
resumes the old one's run folder.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab.errors import UsageError
from transferlab.registry import Task
from transferlab.tune.space import Dimension

#: Optuna's heartbeat: a running trial writes one every HEARTBEAT_SECONDS; a trial on another
#: machine without one for GRACE_SECONDS is taken as dead.
HEARTBEAT_SECONDS, GRACE_SECONDS = 10, 60
PRUNERS = ("median", "hyperband", "none")
HOST = socket.gethostname()


@dataclass
class StudySpec:
    """What a worker needs: the task, its data, the options fixed for every trial, the space,
    where the study lives and how it searches."""

    task: Task
    data: Any
    fixed: dict[str, Any]
    space: list[Dimension]
    root: Path
    name: str
    storage: str
    trials: int
    timeout: float | None = None
    pruner: str = "median"
    sampler_seed: int = 0
    defaults_first: bool = True


def storage_url(storage: str | None, root: Path) -> str:
    """``--storage``, or SQLite in the study's folder. A bare ``postgresql://`` is given the driver
    that is installed: SQLAlchemy 2.1 takes psycopg 3 for it, 2.0 psycopg2."""
    if not storage:
        return f"sqlite:///{(root / 'study.db').resolve()}"
    scheme, _, rest = storage.partition("://")
    if scheme in ("postgresql", "postgres"):
        import importlib.util

        for module, driver in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
            if importlib.util.find_spec(module) is not None:
                return f"{driver}://{rest}"
    return storage


def shown_url(url: str) -> str:
    """A storage URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - any string that is not a URL is shown as given
        return url


def open_study(spec: StudySpec) -> Any:
    """Create the study or join it (several workers, or a resumed one), refusing a storage that
    cannot be reached and a study that was made for another task or objective."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable since 2.9
    spec.root.mkdir(parents=True, exist_ok=True)
    storage = _connect(spec.storage)
    tuning = spec.task.tuning
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[spec.pruner]()
    study = optuna.create_study(storage=storage, study_name=spec.name, direction=tuning.direction,
                                pruner=pruner, load_if_exists=True)  # fmt: skip
    made = study.user_attrs.get("task")
    # TPE (its first 4 trials random). A worker that makes the study draws from --sampler-seed alone,
    # so a one-worker study repeats; one that joins adds its pid, or it would draw the same options.
    joined = 0 if made is None else os.getpid() % 10_000
    study.sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed * 10_000 + joined, n_startup_trials=4)
    if made is None:
        study.set_user_attr("task", spec.task.name)
        study.set_user_attr("metric", tuning.metric)
        if spec.defaults_first and not study.trials:
            study.enqueue_trial({}, user_attrs={"defaults": True})  # trial 0: the task's defaults
    elif made != spec.task.name:
        raise UsageError(f"the study '{spec.name}' in {shown_url(spec.storage)} tunes {made}, not {spec.task.name}",
                         "give another --study name")  # fmt: skip
    return study


def _connect(url: str, attempts: int = 4) -> Any:
    """Optuna's storage at ``url``. Workers that start together race to create its tables (one of
    them then sees "table already exists" or a locked SQLite file), so a failure is retried after a
    pause before it is called unreachable."""
    from optuna.storages import RDBStorage

    for attempt in range(attempts):
        try:
            storage = RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                                 engine_kwargs=_engine_kwargs(url))  # fmt: skip
            if url.startswith("sqlite"):
                _serialize_sqlite(storage.engine)
            return storage
        except Exception as exc:  # noqa: BLE001 - SQLAlchemy's and the drivers' errors
            text = str(exc).lower()
            if attempt + 1 < attempts and "connect" not in text and "import" not in text:
                time.sleep(1.0 + attempt)
                continue
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            remedy = "start the database, or check the URL (e.g. postgresql://user:pass@host/db)"
            if "import" in text:  # no driver for the URL's database
                remedy = "install its driver (PostgreSQL: pip install 'transferlab[postgres]')"
            raise UsageError(f"--storage {shown_url(url)} cannot be reached ({reason})", remedy) from None
    raise AssertionError("unreachable")


def _serialize_sqlite(engine: Any) -> None:
    """Make every SQLite transaction take the write lock at its start (``BEGIN IMMEDIATE``).

    Optuna claims a queued trial by reading it WAITING, then writing RUNNING in one session. The
    ``FOR UPDATE`` that makes this atomic on PostgreSQL is ignored by SQLite, and Python's sqlite3
    starts the transaction only at the write, so two workers could both read WAITING and both run
    the same trial. Serialised transactions make the second see RUNNING and take the next trial.
    (SQLAlchemy's documented recipe for SQLite's transactional isolation.)"""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # sqlite3 must not begin on its own: "begin" below does

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened while the storage was made lack the listeners


def _engine_kwargs(url: str) -> dict[str, Any]:
    """SQLite: several processes write one file; wait for the lock instead of failing at once."""
    return {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}


def _retried(trials: list[Any]) -> set[int]:
    return {int(t.user_attrs["retry_of"]) for t in trials if t.user_attrs.get("retry_of") is not None}


def counted(trials: list[Any]) -> int:
    """Trials that count toward ``--trials``: all but a dead worker's (its retry counts instead)
    and those a worker asked for once the study was already full."""
    retried = _retried(trials)
    return sum(1 for t in trials if t.number not in retried and not t.user_attrs.get("surplus"))


def _alive(trial: Any) -> bool:
    """Whether a RUNNING trial's worker still lives: a pid check on this machine; elsewhere Optuna's
    heartbeat decides (``fail_stale_trials``)."""
    if trial.user_attrs.get("host") != HOST:
        return True
    try:
        os.kill(int(trial.user_attrs.get("pid", 0)) or -1, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def requeue_dead(study: Any) -> list[int]:
    """Mark the trials of dead workers failed and queue each again with its options (the new trial
    resumes the dead one's run folder); trials that failed for a reason of their own stay failed."""
    import optuna
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(study)  # other machines: by heartbeat
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _alive(trial):
            study.tell(trial.number, state=TrialState.FAIL)
    trials = study.get_trials(deepcopy=False)
    retried, requeued = _retried(trials), []
    for trial in trials:
        attrs = trial.user_attrs
        if trial.state != TrialState.FAIL or trial.number in retried or attrs.get("surplus") or attrs.get("error"):
            continue
        study.enqueue_trial(trial.params, user_attrs={"resume": attrs.get("folder"), "retry_of": trial.number,
                                                      "defaults": attrs.get("defaults", False)})  # fmt: skip
        requeued.append(trial.number)
    return requeued


class _Reporter:
    """The run's ``observe``: each held-out score goes to the trial, and the pruner may stop it."""

    def __init__(self, trial: Any, metric: str, keeps_best: bool, maximize: bool) -> None:
        self.trial, self.metric, self.keeps_best, self.maximize = trial, metric, keeps_best, maximize
        self.values: list[float] = []
        self.best: float | None = None

    def __call__(self, row: dict[str, Any]) -> None:
        import math

        import optuna

        value = row.get(self.metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        position = int(row.get("epoch") or row.get("step") or len(self.values) + 1)
        self.values.append(float(value))
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = float(value)
        self.trial.report(float(value), position)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.metric} {value:.4f} at {position}")

    def objective(self) -> float | None:
        if not self.values:
            return None
        return self.best if self.keeps_best else self.values[-1]


def _trial_folder(spec: StudySpec, trial: Any) -> tuple[Path, bool]:
    """Where the trial's run lives, and whether it resumes a dead worker's run there."""
    resume = trial.user_attrs.get("resume")
    if resume and (Path(resume) / "checkpoints").is_dir():
        return Path(resume), True
    return spec.root / f"trial-{trial.number}", False


def objective(spec: StudySpec, trial: Any) -> float:
    """Train one trial as an ordinary run; its objective is the run's held-out metric (the best
    scoring where the run keeps its best, else the last)."""
    import optuna

    from transferlab.errors import TrainingError
    from transferlab.progress import announce

    study, tuning = trial.study, spec.task.tuning
    before = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number]
    if counted(before) >= spec.trials and trial.user_attrs.get("retry_of") is None:
        trial.set_user_attr("surplus", True)  # another worker filled the study meanwhile
        study.stop()
        raise optuna.TrialPruned("the study already has its trials")
    if (
        trial.user_attrs.get("defaults")
        and trial.user_attrs.get("retry_of") is None
        and any(t.user_attrs.get("defaults") and t.user_attrs.get("retry_of") is None for t in before)
    ):  # two workers that made the study together both queued the defaults' trial: one is enough
        trial.set_user_attr("surplus", True)
        raise optuna.TrialPruned("the defaults' trial is queued twice")
    sampled = {} if trial.user_attrs.get("defaults") else {d.name: d.suggest(trial) for d in spec.space}
    folder, resumed = _trial_folder(spec, trial)
    options = {**spec.fixed, **sampled}
    for key, value in {"host": HOST, "pid": os.getpid(), "folder": str(folder), "options": options}.items():
        trial.set_user_attr(key, value)
    shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sampled.items())
    announce(f"tune: trial {trial.number} ({shown or 'the defaults'}){' resumed' if resumed else ''} -> {folder}")
    reporter = _Reporter(trial, tuning.metric, tuning.keeps_best, tuning.direction == "maximize")
    if resumed:  # the scorings before the worker died count: the run keeps its best of all of them
        from transferlab.engine.session import read_metrics

        for row in read_metrics(folder):
            reporter(row)
    where = {"resume": folder} if resumed else {"out": folder, **options}
    started = time.perf_counter()
    try:
        spec.task.api().train(spec.data, observe=reporter, **where)
    except TrainingError as exc:  # this trial's options diverged or ran out of memory: the study goes on
        trial.set_user_attr("error", f"{exc.cause}; {exc.remedy}")
        raise
    finally:
        trial.set_user_attr("seconds", time.perf_counter() - started)
    value = reporter.objective()
    if value is None:
        trial.set_user_attr("error", f"the run logged no {tuning.metric}")
        raise TrainingError(f"trial {trial.number} logged no {tuning.metric}", "check the task's held-out part")
    return value


def _full(spec: StudySpec, study: Any) -> bool:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    return counted(trials) >= spec.trials and not any(t.state == TrialState.WAITING for t in trials)


def work(spec: StudySpec) -> Any:
    """One worker's share: trials until the study has ``trials`` of them (all workers together) or
    ``timeout`` seconds have passed. Optuna's ``optimize`` keeps the heartbeat and records pruned and
    failed trials; a trial that diverges fails alone, bad input stops the worker."""
    from transferlab.errors import TrainingError
    from transferlab.progress import announce

    study = open_study(spec)
    requeued = requeue_dead(study)
    if requeued:
        announce(f"tune: trial(s) {', '.join(map(str, requeued))} of a stopped worker queued again (they resume)")

    def stop_when_full(study: Any, _trial: Any) -> None:
        if _full(spec, study):
            study.stop()

    if not _full(spec, study):
        study.optimize(lambda trial: objective(spec, trial), timeout=spec.timeout, catch=(TrainingError,),
                       callbacks=[stop_when_full])  # fmt: skip
    return study
