"""The epoch-based recipe with held-out scoring that classify (and distill), segment and detect
share: epochs of batches, a held-out score every ``opts.eval_every`` epochs (and at the last), the
best epoch's weights kept as the run, early stopping after ``opts.patience`` scorings without a
better one. A task gives its step, its scoring and its run; the loop, the metrics row, the
best-epoch bookkeeping, the state and the budgets (steps and minutes) live here once.

    while epoch < epochs and not stopped_early:
        begin_epoch(session)                  # modes, freezing, a resumed epoch's batches
        while position() < end of the epoch:  # batches (one a step, unless a task accumulates)
            train_step(session); session.advance(progress_note())
            at the epoch's end: row = epoch_row(); held_out() if scored; save_run() if best; log(row)
            session.step_boundary(position(), state) where whole_state()
"""

from __future__ import annotations

import math
import statistics
import time
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from transferlab.engine.run import OptionsT, Recipe, ResultT

if TYPE_CHECKING:
    from transferlab.engine.session import TrainingSession


def budgeted_epochs(task: str, epochs: int, steps_per_epoch: int, max_steps: int | None, announce: bool) -> int:
    """The whole epochs to train: ``epochs``, or fewer when they would take more than ``max_steps``
    steps (a CPU's default budget keeps a large dataset's run within its time); a cut is said once."""
    if not max_steps or epochs * steps_per_epoch <= max_steps:
        return epochs
    kept = max(1, max_steps // steps_per_epoch)
    if announce:
        from transferlab.progress import announce as say

        say(f"{task}: {epochs} epochs of {steps_per_epoch} steps exceed --max-steps {max_steps}: training {kept} "
            f"epochs (set --max-steps 0 for all of them)")  # fmt: skip
    return kept


class TimeBudget:
    r"""Seconds of training and held-out scoring a run may take (0: no limit), and what its epochs
    and scorings took so far (carried across a resume, so the budget is the whole run's).

    The most epochs that fit: :math:`\max n \le N` with
    :math:`s + (n - e)\,t_{epoch} + k(n)\,t_{score} \le B`, where :math:`s` is the time spent,
    :math:`e` the epochs done, :math:`t_{epoch}` the median of the last three epochs' times (the
    pace now, as a machine's speed drifts, without one slow epoch's jolt; the first epoch, which
    includes warm-up, left out once there are others), :math:`t_{score}` the mean scoring time and
    :math:`k(n)` the scorings still to come in a run of :math:`n` epochs (the current one's included)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.epochs: list[float] = []
        self.scorings: list[float] = []
        self.announced = False

    @property
    def spent(self) -> float:
        return sum(self.epochs) + sum(self.scorings)

    @property
    def pace(self) -> float:
        """Seconds an epoch takes now (see above)."""
        return statistics.median((self.epochs[1:] or self.epochs)[-3:])

    def epochs_within(self, done: int, planned: int, scored: Any) -> int:
        """The most epochs, between ``done`` and ``planned``, whose projected time fits;
        ``scored(epoch, last)`` says whether an epoch is scored in a run of ``last`` epochs."""
        pace, spent = self.pace, self.spent
        scoring = sum(self.scorings) / len(self.scorings) if self.scorings else 0.0
        for last in range(planned, done, -1):
            to_score = sum(scored(e, last) for e in range(done, last + 1))
            if spent + (last - done) * pace + to_score * scoring <= self.seconds:
                return last
        return max(done, 1)

    def state(self) -> dict[str, Any]:
        return {"epochs": list(self.epochs), "scorings": list(self.scorings), "announced": self.announced}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.epochs, self.scorings = list(state["epochs"]), list(state["scorings"])
            self.announced = bool(state["announced"])


class EpochRecipe(Recipe[OptionsT, ResultT], Generic[OptionsT, ResultT]):
    """Epochs over ``train_size()`` examples at ``opts.batch_size``; after each scored epoch,
    ``held_out()`` gives scores (with ``best_metric`` among them) and whatever the report wants of
    that epoch; a better epoch is saved as the run (``save_run``) on rank 0. With ``opts.patience``
    (where a task has it) the run stops after that many scorings without a better one."""

    #: The held-out score that picks the best epoch (higher is better).
    best_metric: ClassVar[str]
    #: The held-out scores written to ``metrics.csv`` beside the loss.
    logged: ClassVar[tuple[str, ...]] = ()

    epoch: int = 0
    epochs: int = 0  # the epochs this run trains (``opts.epochs``, or fewer under its budgets)
    best: dict[str, Any]
    window: list[float]
    stale: int = 0  # scorings since the best one (early stopping)
    stopped_early: bool = False

    def start_epochs(self) -> None:
        """Call at the end of ``__init__``: the position, the best so far, and the epoch budget."""
        self.step, self.epoch, self.window, self.stale, self.stopped_early = 0, 0, [], 0, False
        self.best = {self.best_metric: -1.0, "epoch": 0}
        self.best_extra: Any = None  # the best epoch's extras (not checkpointed; recomputed if needed)
        self._scoring_announced = False
        max_steps = getattr(self.opts, "max_steps", None)
        self.planned = budgeted_epochs(self.task, self.opts.epochs, self.steps_per_epoch(), max_steps,
                                       announce=self.fabric.global_rank == 0)  # fmt: skip
        self.epochs = self.planned
        self.clock = TimeBudget(60 * float(getattr(self.opts, "time_budget", None) or 0))

    @abstractmethod
    def train_size(self) -> int:
        """Training examples in an epoch."""

    @abstractmethod
    def train_step(self, session: TrainingSession) -> dict[str, float]:
        """One optimiser step (advancing ``self.step``); returns its numbers, the ``loss`` among them
        (an epoch's row in ``metrics.csv`` holds its mean)."""

    @abstractmethod
    def held_out(self) -> tuple[dict[str, Any], Any]:
        """(scores, extras) of the current weights on the held-out data (rank 0)."""

    @abstractmethod
    def save_run(self, scores: dict[str, Any]) -> None:
        """Write the current weights as the run (rank 0)."""

    def train_mode(self) -> None:
        """The networks' modes for an epoch (a task may hold BatchNorm statistics here)."""
        self.model.train()

    def begin_epoch(self, session: TrainingSession) -> None:
        """Before an epoch's first batch, or the first of what is left of a resumed one."""
        self.train_mode()

    def describe(self, scores: dict[str, Any]) -> str:
        return f"held-out {self.best_metric} {scores[self.best_metric]:.3f}"

    def progress_note(self) -> str:
        return f"epoch {self.epoch + 1}/{self.epochs} loss {self.window[-1]:.4f}"

    def epoch_row(self) -> dict[str, Any]:
        """The training numbers of the epoch just ended, for its ``metrics.csv`` row (held-out
        scores and ``seconds`` join them): by default the mean of its steps' losses."""
        row = {"epoch": self.epoch, "step": self.step, "loss": sum(self.window) / max(1, len(self.window)),
               "lr": self.optimizer.param_groups[-1]["lr"]}  # fmt: skip
        self.window = []
        return row

    def position(self) -> int:
        """Batches trained in the whole run, where progress, checkpoints and a resume stand: one
        batch is one step unless a task accumulates gradients over several."""
        return self.step

    def whole_state(self) -> bool:
        """Whether a checkpoint may be taken after this batch (not inside an accumulation)."""
        return True

    # ----------------------------------------------------------------- the loop

    def steps_per_epoch(self) -> int:
        """Batches in an epoch (the unit of ``position``)."""
        return max(1, math.ceil(self.train_size() / self.opts.batch_size))

    def total(self) -> int:
        return self.epochs * self.steps_per_epoch()

    def also_takes(self) -> str:
        if not self.clock.seconds:
            return "held-out scoring"
        return f"held-out scoring; --time-budget {self.clock.seconds / 60:g} min trains fewer epochs if they do not fit"

    def fit(self, session: TrainingSession, stop_after: int | None = None) -> None:
        per_epoch = self.steps_per_epoch()
        last = self.epoch + stop_after if stop_after is not None else None
        # the time budget may cut epochs, patience end the run
        while self.epoch < (self.epochs if last is None else min(self.epochs, last)) and not self.stopped_early:
            started, end = time.perf_counter(), (self.epoch + 1) * per_epoch
            self.begin_epoch(session)
            while self.position() < end:
                self.window.append(self.train_step(session)["loss"])
                session.advance(self.progress_note())
                ended = self.position() == end
                if ended:
                    self.epoch += 1
                    self._end_epoch(session, time.perf_counter() - started)
                if ended or self.whole_state():
                    session.step_boundary(self.position(), self.state, last=ended, log_position=self.epoch)

    def _end_epoch(self, session: TrainingSession, seconds: float) -> None:
        row = self.epoch_row()
        self.clock.epochs.append(seconds)
        self._fit_time_budget(session)  # before scoring: an epoch the budget makes the last is scored
        scored = self._scored(self.epoch)
        if scored and self.fabric.global_rank == 0:  # held-out scores and the run are rank 0's
            scoring_started = time.perf_counter()
            scores, extra = self.held_out()
            self.clock.scorings.append(time.perf_counter() - scoring_started)
            self._announce_scoring_time(self.clock.scorings[-1])
            row |= {k: scores[k] for k in self.logged}
            improved = scores[self.best_metric] > self.best[self.best_metric]
            if improved:  # its scores are the report's
                self.best = {self.best_metric: scores[self.best_metric], "epoch": self.epoch, "scores": scores}
                self.best_extra = extra
                self.save_run(scores)
            self.stale = 0 if improved else self.stale + 1
            session.advance(f"epoch {self.epoch} {self.describe(scores)}", steps=0)
        session.log(row | {"seconds": seconds})  # the epoch's training
        if scored:
            self._share_scoring()

    def _share_scoring(self) -> None:
        """Rank 0's best epoch and count of scorings since are every rank's (each returns the same
        result, and a rank that stopped alone under ``--patience`` would hang)."""
        if getattr(self.fabric, "world_size", 1) > 1:
            self.best, self.stale = self.fabric.broadcast((self.best, self.stale), src=0)
        patience = int(getattr(self.opts, "patience", 0) or 0)
        self.stopped_early = bool(patience) and self.stale >= patience

    def _scored(self, epoch: int, last: int | None = None) -> bool:
        """Whether held-out scoring follows ``epoch``: every ``--eval-every`` epochs and the last."""
        return epoch % self.opts.eval_every == 0 or epoch == (last or self.epochs)

    def _fit_time_budget(self, session: TrainingSession) -> None:
        """Under ``--time-budget``: the most epochs (up to the planned ones) that the pace measured
        so far fits, rank 0's choice for every rank; said when it first cuts."""
        if not self.clock.seconds:
            return
        epochs = self.epochs
        if self.fabric.global_rank == 0:
            epochs = self.clock.epochs_within(self.epoch, self.planned, self._scored)
        if getattr(self.fabric, "world_size", 1) > 1:
            epochs = int(self.fabric.broadcast(epochs, src=0))
        if epochs == self.epochs:
            return
        settled = len(self.clock.epochs) > 1 or epochs == self.epoch  # the first epoch's pace includes warm-up
        if epochs < self.planned and settled and not self.clock.announced and self.fabric.global_rank == 0:
            from transferlab.progress import announce

            self.clock.announced = True
            announce(f"{self.task}: at {self.clock.pace:.1f} s an epoch here, {self.planned} epochs would "
                     f"take more than --time-budget {self.clock.seconds / 60:g} min: training {epochs} (it is "
                     f"re-measured every epoch; --time-budget 0 for no limit)")  # fmt: skip
        self.epochs = epochs
        session.retotal(self.total())

    def _announce_scoring_time(self, seconds: float) -> None:
        """Once a process: the time the held-out scorings still to come add to the announced
        duration, which counts training steps only."""
        if self._scoring_announced:
            return
        self._scoring_announced = True
        to_come = sum(map(self._scored, range(self.epoch + 1, self.epochs + 1)))
        if to_come:
            from transferlab.progress import announce

            announce(f"{self.task}: held-out scoring takes {seconds:.1f} s here; {to_come} more add about "
                     f"{to_come * seconds / 60:.1f} min")  # fmt: skip

    # ----------------------------------------------------------------- state

    def state_parts(self) -> dict[str, Any]:
        """What a checkpoint holds besides the options and the RNGs; a task adds its own parts."""
        return dict(model=self.model, optimizer=self.optimizer, step=self.step, epoch=self.epoch, best=self.best,
                    window=self.window, epochs=self.epochs, clock=self.clock.state(), stale=self.stale,
                    stopped_early=self.stopped_early)  # fmt: skip

    def state(self) -> dict[str, Any]:
        from transferlab.engine.checkpoint import capture_state

        return capture_state(self.opts, **self.state_parts())

    def restore(self, state: dict[str, Any]) -> None:
        from transferlab.engine.checkpoint import restore_state

        restore_state(state, model=self.model, optimizer=self.optimizer)
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.best, self.window = dict(state["best"]), list(state.get("window", []))
        self.stale, self.stopped_early = int(state.get("stale", 0)), bool(state.get("stopped_early", False))
        self.clock.restore(state.get("clock"))
        if self.clock.seconds and "epochs" in state:  # the budget's cut so far stands (the same schedule)
            self.epochs = min(self.planned, max(self.epoch, int(state["epochs"])))

    @property
    def complete(self) -> bool:
        """Every epoch trained, or stopped by ``--patience`` (a whole run either way)."""
        return self.epoch >= self.epochs or self.stopped_early
