"""The step loop every step-counted recipe shares (autoencoder, gan, stylize train, translate,
adapt), written once; an epoch recipe with held-out scoring is ``engine/epochs.py``.

    while step < last:
        row = train_step(session)              # one optimiser step (step += 1): its losses, or {}
        session.advance(progress(row))
        row |= after_step(session)             # what falls due now: samples, held-out scores
        session.log({"step": step, **row})     # when there is something to log
        session.step_boundary(step, state, last=checkpoint_due())
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Generic

from transferlab.engine.run import OptionsT, Recipe, ResultT


class StepRecipe(Recipe[OptionsT, ResultT], Generic[OptionsT, ResultT]):
    """A recipe of ``total()`` optimiser steps; the task writes the step and what falls due."""

    last_step: int = 0  # where the running fit ends: total(), or sooner with stop_after

    @abstractmethod
    def train_step(self, session: Any) -> dict[str, float]:
        """One optimiser step on this process's share of the global batch; advances ``step``.
        Returns the losses to log for this step, or ``{}`` when the task logs them in batches."""

    def progress(self, row: dict[str, float]) -> str | None:
        """The progress line's text after a step: its loss, when the step returned one."""
        return f"loss {row['loss']:.4f}" if "loss" in row else None

    def after_step(self, session: Any) -> dict[str, float]:
        """What falls due after this step (samples, held-out scores, an epoch's row); their values
        join the step's row in ``metrics.csv``."""
        return {}

    def checkpoint_due(self) -> bool:
        """Whether this step must be checkpointed (besides every ``--checkpoint-every``): this fit's
        last. A recipe whose state is only whole at some steps (an epoch's end) says so here."""
        return self.step == self.last_step

    def fit(self, session: Any, stop_after: int | None = None) -> None:
        """Steps from the restored position to ``total()`` (or ``stop_after`` more)."""
        self.last_step = self.total() if stop_after is None else min(self.total(), self.step + stop_after)
        while self.step < self.last_step:
            row = self.train_step(session)
            session.advance(self.progress(row))
            row = {**row, **self.after_step(session)}
            if row:
                session.log({"step": self.step, **row})
            session.step_boundary(self.step, self.state, last=self.checkpoint_due())
