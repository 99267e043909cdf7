"""The plumbing of one training run, once for every task (torchtune's shape: the task's recipe
owns its loop and calls these shared components; see docs/architecture.md for why).

A :class:`TrainingSession` owns the run folder and its lock, checkpoints (atomic, rotated, with
identity checks on resume), the append-only metrics log and the optional TensorBoard logger,
progress, the divergence stop, and preemption (SIGTERM/SIGINT -> checkpoint at the next step
boundary -> exit code :data:`PREEMPTED_EXIT`). Only rank 0 writes files.

    state = read_checkpoint(run_dir, TASK) if resume else None  # its options rebuild the recipe
    with TrainingSession(spec, fabric, total=opts.steps, state=state) as session:  # identity checked
        ...
        while step < total:
            losses = recipe.step()
            session.check_finite(loss, step)
            session.advance(f"loss {loss:.3f}")
            session.log({"step": step, "loss": loss})
            session.step_boundary(step, recipe.state)   # checkpoints when due or preempted
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transferlab.engine.checkpoint import load_checkpoint, save_checkpoint
from transferlab.errors import DataError, RunError, TrainingError, TransferlabError, UsageError
from transferlab.io import atomic_path

CHECKPOINT_DIR = Path("checkpoints")
LAST, PREVIOUS = "last.safetensors", "previous.safetensors"
METRICS_FILE = "metrics.csv"
LOCK_FILE = ".lock"
#: Exit code of a run stopped by SIGTERM (or SIGINT) after writing its checkpoint: resume it.
PREEMPTED_EXIT = 75  # EX_TEMPFAIL: "try again later", which is what a requeue does
#: Seconds a stop request may wait for the next step boundary before the run is ended without a
#: new checkpoint (a process stuck in a collective or a data loader never reaches one); SLURM
#: sends SIGKILL some 30-120 s after SIGTERM, so this stays within that by default.
STOP_GRACE_SECONDS = 60.0


def stop_grace_seconds() -> float:
    """:data:`STOP_GRACE_SECONDS`, or ``TRANSFERLAB_STOP_GRACE`` as the process has it when asked to stop."""
    return float(os.environ.get("TRANSFERLAB_STOP_GRACE", STOP_GRACE_SECONDS))


#: Steps timed at a session's start to say how long the rest of the run will take.
TIMED_STEPS = 20
#: A rest shorter than this is not announced (the progress bar's ETA says it well enough).
ANNOUNCED_SECONDS = 30.0
#: A boundary the recipe marks whole (an epoch's end) is checkpointed only when the last checkpoint
#: is at least this old: on a small set an epoch takes less time than writing the checkpoint (the
#: demo's 40-epoch runs on 50 images spent 15% of their time in checkpoints). A crash loses at most
#: this much work; the fit's end, a stop request and every ``--checkpoint-every`` are always written.
CHECKPOINT_SPACING_SECONDS = 2.0


def duration_sentence(task: str, rate: float, left: int, also: str = "") -> str | None:
    """How long the rest of a run takes here, or None for a rest under ``ANNOUNCED_SECONDS``
    with nothing else to come (``also``: e.g. the FID scoring after the steps)."""
    seconds = left / rate
    if seconds < ANNOUNCED_SECONDS and not also:
        return None
    took = f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"
    return f"{task}: {rate:.2f} steps/s here: the remaining {left:,} steps take about {took}" + (
        f", plus {also}" if also else ""
    )


class Preempted(TransferlabError):
    """SIGTERM or SIGINT stopped the run at a step boundary, after a checkpoint was written."""

    exit_code = PREEMPTED_EXIT


def fingerprint(*parts: Any) -> str:
    """A short digest of the exact training data (arrays, tensors, strings, lists of strings), so a
    resume on other data is refused."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "detach"):
            part = part.detach().cpu().contiguous().numpy()
        if isinstance(part, np.ndarray):
            digest.update(str(part.shape).encode() + np.ascontiguousarray(part).tobytes())
        else:
            digest.update(("|".join(map(str, part)) if isinstance(part, (list, tuple)) else str(part)).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@dataclass
class RunSpec:
    """What identifies a run on resume: task, checkpoint format, data, and the options that must match."""

    task: str
    run_dir: Path
    data: str  # a fingerprint of the exact training data
    fixed: dict[str, Any] = field(default_factory=dict)
    resume_command: str = ""  # e.g. "transferlab gan train DATA --resume RUN"
    format_version: int = 1


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST


def read_checkpoint(run_dir: Path, task: str) -> dict[str, Any]:
    """The newest readable checkpoint of ``run_dir`` (``last``, else ``previous`` with a warning)."""
    import warnings

    folder = Path(run_dir) / CHECKPOINT_DIR
    last, previous = folder / LAST, folder / PREVIOUS
    if not last.is_file() and not previous.is_file():
        raise RunError(f"{run_dir} has no checkpoint to resume ({last})", f"pass the folder of a {task} run")
    try:
        state = load_checkpoint(last)
    except RunError as damaged:
        if not previous.is_file():
            raise RunError(damaged.cause, f"no earlier checkpoint is left; start a new run of {task}") from None
        warnings.warn(f"{damaged.cause}; resuming from the previous checkpoint {previous}", stacklevel=2)
        state = load_checkpoint(previous)
    if state.get("task") != task:
        raise RunError(f"{run_dir} is a '{state.get('task')}' run, not a {task} run", "resume it with its own command")
    return state


def write_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    """Write the new state beside the old one, then rotate: last -> previous, new -> last. An error
    while writing (a full disk) leaves both earlier files as they were, and at no moment of the
    rotation is ``last`` missing: another process (a watcher, ``serve``) always finds a whole one."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    fresh = folder / f".new-{LAST}"
    try:
        save_checkpoint(fresh, state)
        if (folder / LAST).is_file():
            _keep_as_previous(folder / LAST, folder / PREVIOUS)
    except OSError as exc:
        raise TrainingError(
            f"the checkpoint could not be written to {folder} ({exc.strerror or exc})",
            f"free space there and resume; the previous checkpoint in {folder} is intact",
        ) from None
    os.replace(fresh, folder / LAST)


def _keep_as_previous(last: Path, previous: Path) -> None:
    """``previous`` becomes a second name of ``last`` (a hard link, swapped in atomically), so
    ``last`` stays in place until the new file replaces it; a copy where links are not allowed."""
    staged = previous.with_name(f".old-{previous.name}")
    staged.unlink(missing_ok=True)
    try:
        os.link(last, staged)
    except OSError:
        shutil.copyfile(last, staged)
    os.replace(staged, previous)


def resumed_options(state: dict[str, Any], given: dict[str, Any], options_cls: type) -> Any:
    """A resumed run keeps its own options. A given option that differs is refused, except those
    marked ``resumable`` on the options class (the budget, the devices, how often it reports),
    which take the new value: changing anything else would not continue the same run."""
    from transferlab.engine.options import changeable_on_resume

    kept, changeable = dict(state["options"]), changeable_on_resume(options_cls)
    for key, value in given.items():
        if key in changeable:
            kept[key] = value  # also where the run predates the option (channels_last)
        elif key in kept and value != kept[key]:
            raise RunError(
                f"the run was trained with {key} {kept.get(key)!r}; resuming with {value!r} cannot continue it",
                f"leave out --{key.replace('_', '-')} when resuming, or start a new run",
            )
    names = {f.name for f in fields(options_cls)}
    return options_cls(**{k: v for k, v in kept.items() if k in names})


# ----------------------------------------------------------------------------- metrics log


class MetricsLog:
    """``metrics.csv``, appended whole lines at a time through one open file (readable live with
    ``tail -f``) and synced to disk with every checkpoint: rows after the last checkpoint would be
    trained again on resume anyway, so ``start`` cuts the file back to the checkpoint's ``key``."""

    def __init__(self, path: Path, fields: tuple[str, ...], key: str) -> None:
        self.path, self.fields, self.key = Path(path), tuple(fields), key
        self._handle: Any = None

    def start(self, resumed_at: float | None) -> None:
        rows = self.rows() if resumed_at is not None and self.path.is_file() else []
        kept = [r for r in rows if r.get(self.key) not in (None, "") and float(r[self.key]) <= resumed_at]
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self._handle = open(self.path, "a", newline="")  # noqa: SIM115 - held for the run, closed by close()
        self._writer = csv.DictWriter(self._handle, fieldnames=self.fields, extrasaction="ignore")

    def append(self, *rows: dict[str, Any]) -> None:
        self._writer.writerows({k: _cell(row.get(k)) for k in self.fields} for row in rows)
        self._handle.flush()

    def sync(self) -> None:
        if self._handle is not None:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self.sync()
            self._handle.close()
            self._handle = None

    def rows(self) -> list[dict[str, str]]:
        with open(self.path, newline="") as handle:
            text = handle.read()
        complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]  # drop a torn last line
        return list(csv.DictReader(io.StringIO(complete)))


def read_metrics(run_dir: Path) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` as numbers (an empty cell is NaN): the one record of
    its curves, which reports and results read instead of keeping their own copies."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    rows = MetricsLog(path, (), "").rows()
    return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in rows]


def metric_columns(rows: list[dict[str, float]], *names: str) -> dict[str, list[float]]:
    """Columns ``names`` of :func:`read_metrics` rows."""
    return {name: [row.get(name, math.nan) for row in rows] for name in names}


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return "" if value is None else value


# ----------------------------------------------------------------------------- the session


class TrainingSession:
    """One training run's shared plumbing; use it as a context manager around the loop."""

    def __init__(
        self,
        spec: RunSpec,
        fabric: Any,
        *,
        total: int,
        title: str,
        metrics: tuple[str, ...] = ("step",),
        logger: str = "csv",
        checkpoint_every: int = 0,
        state: dict[str, Any] | None = None,
        also_takes: Callable[[], str] | None = None,
        observe: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``also_takes``: what the duration said after the first steps leaves out (e.g. "FID/KID
        at 2 point(s)"), asked when it is said; ``observe``: called with every row logged (rank 0)."""
        self.spec, self.fabric, self.total, self.title = spec, fabric, total, title
        self.also_takes, self.observe = also_takes, observe
        self._timed: tuple[float, int] | None = None  # (time, steps) since the first step here
        self.run_dir = Path(spec.run_dir)
        self.state, self.checkpoint_every = state, checkpoint_every
        self.done = int(state.get("progress", 0)) if state else 0
        self.is_writer = getattr(fabric, "global_rank", 0) == 0
        self.log_file = MetricsLog(self.run_dir / METRICS_FILE, metrics, key=metrics[0])
        self.logger_name = logger
        self.stop_signal: int | None = None
        self._lock: Any = None
        self._handlers: dict[int, Any] = {}
        self._progress: Any = None
        self._tensorboard: Any = None
        self._watchdog: StopWatchdog | None = None
        self._saved_at: float | None = None  # time.monotonic() of this process's last checkpoint
        self._unsaved: tuple[Callable[[], dict[str, Any]], int, float | None] | None = None  # a boundary skipped

    # -------------------------------------------------------------- entering and leaving

    def __enter__(self) -> TrainingSession:
        from transferlab.progress import StepProgress

        if self.state is not None:
            self.verify(self.state)
        try:
            if self.is_writer:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                self._acquire_lock()
                self._tensorboard = self._make_tensorboard()
                self.log_file.start(None if self.state is None else float(self.state["log_position"]))
            self._install_signal_handlers()
            self._progress = StepProgress(self.total, self.done, self.title, enabled_here=self.is_writer).__enter__()
        except BaseException:
            self.__exit__(*sys.exc_info())  # release the lock and the log of a session that did not start
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
        self.log_file.close()
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        if self._watchdog is not None:
            self._watchdog.close()
        if self._tensorboard is not None:
            self._tensorboard.finalize("success" if exc[0] is None else "failed")
        if self._lock is not None:
            self._lock.release()

    def _acquire_lock(self) -> None:
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.run_dir / LOCK_FILE))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise UsageError(
                f"another process is training into {self.run_dir} (it holds {self.run_dir / LOCK_FILE})",
                "wait for it to finish, or choose another --out",
            ) from None
        self._lock = lock

    def _make_tensorboard(self) -> Any:
        if self.logger_name != "tensorboard":
            return None
        try:
            from lightning.fabric.loggers import TensorBoardLogger
        except ImportError:
            from lightning_fabric.loggers import TensorBoardLogger
        try:
            return TensorBoardLogger(root_dir=str(self.run_dir), name="tensorboard", version="")
        except ModuleNotFoundError:
            raise UsageError(
                "--logger tensorboard needs the tensorboard package", "pip install tensorboard (or tensorboardX)"
            ) from None

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._handlers[signum] = signal.signal(signum, self._request_stop)
        self._watchdog = StopWatchdog(self.run_dir, self.spec.resume_command)

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stop_signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.stop_signal = signum

    # -------------------------------------------------------------- resume and checkpoints

    def verify(self, state: dict[str, Any]) -> None:
        spec = self.spec
        if int(state.get("format_version", 0)) > spec.format_version:
            raise RunError("the checkpoint was written by a newer transferlab", "upgrade transferlab to resume it")
        if state.get("data") != spec.data:
            raise DataError(
                "the data (or its train/val split) differs from the data the run was started on",
                "resume with the same DATA (and split options) the run was started with",
            )
        for key, value in spec.fixed.items():
            if key in state.get("fixed", {}) and state["fixed"][key] != value:
                raise RunError(
                    f"the run was trained with {key} {state['fixed'][key]!r}, not {value!r}",
                    "resume with the run's own options, or start a new run",
                )

    def save(self, state: dict[str, Any], position: int, log_position: float | None = None) -> None:
        """Write the training state with the run's identity (rank 0), then wait for every rank.
        ``position`` is the progress reached; ``log_position`` the metrics-log key it covers."""
        if self.is_writer:
            spec = self.spec
            identity = {"task": spec.task, "format_version": spec.format_version, "data": spec.data}
            where = {"progress": position, "log_position": position if log_position is None else log_position}
            write_checkpoint(self.run_dir, {**state, **identity, "fixed": spec.fixed, **where})
            self.log_file.sync()
        barrier = getattr(self.fabric, "barrier", None)
        if barrier is not None:
            barrier()
        self._saved_at, self._unsaved = time.monotonic(), None

    def step_boundary(
        self, position: int, state: Callable[[], dict[str, Any]], last: bool = False, log_position: float | None = None
    ) -> None:
        """Checkpoint when due: every ``checkpoint_every`` units, and at a ``last`` boundary (whole
        state: an epoch's end, the fit's end) unless the last checkpoint is younger than
        :data:`CHECKPOINT_SPACING_SECONDS` (:meth:`flush` writes a skipped one at the fit's end). On
        a stop request, checkpoint and raise :class:`Preempted`."""
        every = self.checkpoint_every > 0 and position % self.checkpoint_every == 0
        spaced = last and self._spaced()  # asked at every such boundary: on all ranks, whatever else is due
        if every or spaced or self.stop_signal is not None:
            self.save(state(), position, log_position)
        elif last:
            self._unsaved = (state, position, log_position)
        if self.stop_signal is not None:
            name = signal.Signals(self.stop_signal).name
            raise Preempted(
                f"{name}: stopped at {position}/{self.total}; the checkpoint is {checkpoint_path(self.run_dir)}",
                f"continue with: {self.spec.resume_command or 'the same command'} --resume {self.run_dir}",
            )

    def flush(self) -> None:
        """At the fit's end: write the last whole boundary if it was skipped for being too soon and
        no step has trained since (a fit stopped between whole boundaries keeps the checkpoint before)."""
        if self._unsaved is not None:
            state, position, log_position = self._unsaved
            self.save(state(), position, log_position)

    def _spaced(self) -> bool:
        """Whether the last checkpoint is old enough for another; rank 0's clock decides for every
        rank (they must agree: a checkpoint ends in a barrier)."""
        spaced = self._saved_at is None or time.monotonic() - self._saved_at >= CHECKPOINT_SPACING_SECONDS
        if getattr(self.fabric, "world_size", 1) > 1:
            spaced = bool(self.fabric.broadcast(spaced, src=0))
        return spaced

    # -------------------------------------------------------------- progress, logs, divergence

    def retotal(self, total: int) -> None:
        """The run's new length in units of progress (a time budget cut or restored epochs)."""
        self.total = total
        self._progress.retotal(total)

    def advance(self, info: str | None = None, steps: int = 1) -> None:
        self._progress.advance(info, steps)
        if steps:
            self._unsaved = None  # a skipped boundary's state is gone once training moves past it
            self._estimate_duration(steps)

    def _estimate_duration(self, steps: int) -> None:
        """After the first :data:`TIMED_STEPS` steps of this process, say (once, rank 0) how long
        the rest will take here, so that a slow run is never a mystery."""
        if self._timed is None:  # the first step sets the clock: set-up and warm-up are not counted
            self._timed = (time.perf_counter(), 0)
            return
        started, counted = self._timed
        self._timed = (started, counted + steps)
        left = self.total - self.done - counted - steps - 1
        if counted < TIMED_STEPS <= counted + steps and left > TIMED_STEPS and self.is_writer:
            from transferlab.progress import announce

            rate = (counted + steps) / (time.perf_counter() - started)
            sentence = duration_sentence(self.spec.task, rate, left, self.also_takes() if self.also_takes else "")
            if sentence:
                announce(sentence)

    def log(self, *rows: dict[str, Any]) -> None:
        """Append rows to ``metrics.csv`` (and TensorBoard when asked), on rank 0."""
        if not self.is_writer or not rows:
            return
        self.log_file.append(*rows)
        for row in rows if self.observe else ():
            self.observe(row)
        if self._tensorboard is None:
            return
        key = self.log_file.key
        for row in rows:
            numbers = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and k != key}
            self._tensorboard.log_metrics(numbers, step=int(row[key]))

    def check_finite(self, value: Any, position: int | str, remedy: str) -> None:
        """Stop on a non-finite loss (a float or a tensor of values), naming the last good state."""
        import torch

        tensor = torch.as_tensor(value)
        if not bool(torch.isfinite(tensor).all()):
            self.diverged(f"the loss became non-finite at {position}", remedy)

    def diverged(self, what: str, remedy: str) -> None:
        raise TrainingError(
            f"training diverged: {what}",
            f"{remedy}; the last good state is {checkpoint_path(self.run_dir)} "
            f"({self.spec.resume_command or 'the same command'} --resume {self.run_dir})",
        )


class StopWatchdog:
    """Ends a run that cannot stop cleanly. Python runs a signal handler only when the main thread
    is between bytecodes, so a process blocked in C (a collective that another rank never joins,
    a hung data loader) would ignore SIGTERM for ever. The C-level handler still writes the
    signal's number to the wakeup fd; this thread reads it, waits :func:`stop_grace_seconds` for
    the session to end, and otherwise stops the local processes with :data:`PREEMPTED_EXIT`: the
    last checkpoint (atomic) is kept and the next ``--resume`` starts from it."""

    def __init__(self, run_dir: Path, resume_command: str) -> None:
        self.run_dir, self.resume_command = run_dir, resume_command
        self.finished = threading.Event()
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="transferlab-stop-watchdog", daemon=True).start()

    def close(self) -> None:
        self.finished.set()
        signal.set_wakeup_fd(self._previous)
        os.close(self._write)  # the watching thread reads the end of the pipe and returns

    def _watch(self) -> None:
        try:
            while True:
                received = os.read(self._read, 64)
                if not received:
                    return
                if {signal.SIGTERM, signal.SIGINT} & set(received):
                    break
            grace = stop_grace_seconds()
            if self.finished.wait(grace):
                return
            self._end_stuck_run(grace)
        finally:
            os.close(self._read)

    def _end_stuck_run(self, grace: float) -> None:
        last = checkpoint_path(self.run_dir)
        kept = f"the last checkpoint {last} is kept" if last.is_file() else "no checkpoint was written yet"
        sys.stderr.write(
            f"error: the stop request was not answered within {grace:g} s (a process is stuck: "
            f"a collective another process never joined, or a data loader); stopped without a new checkpoint\n"
            f"remedy: {kept}; continue with: {self.resume_command or 'the same command'} --resume {self.run_dir}\n"
        )
        sys.stderr.flush()
        for child in _child_processes(os.getpid()):  # the other local ranks Fabric started
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        os._exit(PREEMPTED_EXIT)


def _child_processes(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux's /proc; none found elsewhere)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError, ValueError):
            children += [int(child) for child in (task / "children").read_text().split()]
    return children
