"""What the dense tasks (segment, detect) share on top of the epoch loop: their data's shape
(``train``/``val`` splits, ``classes``, ``summary()``), the run they save at their best epoch and
the result they return; each task keeps its network, its batches, its scoring and its report."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import asdict
from typing import Any, ClassVar, Generic

from transferlab.engine.epochs import EpochRecipe
from transferlab.engine.performance import unwrap
from transferlab.engine.run import OptionsT, ResultT
from transferlab.runs import save_run


class DenseRecipe(EpochRecipe[OptionsT, ResultT], Generic[OptionsT, ResultT]):
    """An epoch recipe over in-memory dense data, keeping its best held-out epoch as the run."""

    #: The task's result (a ``reports.comparison.StrategyResult``) when no report is written.
    result_type: ClassVar[type]
    #: The ``run.json`` key naming where the encoder's weights came from.
    weights_key: ClassVar[str] = "encoder_weights"

    data: Any  # train / val splits, classes, summary()
    model: Any
    optimizer: Any
    strategy: Any
    weights_source: str
    performance: Any

    @abstractmethod
    def model_spec(self) -> dict[str, Any]:
        """``run.json``'s model entry: its kind and all its loader needs to rebuild the network."""

    @abstractmethod
    def preprocessing(self) -> dict[str, Any]:
        """What inputs the saved network takes."""

    @abstractmethod
    def write_report(self, name: str, seconds: float) -> ResultT:
        """The run's report (rank 0, complete run) and the result it shows."""

    def train_size(self) -> int:
        return len(self.data.train)

    def encoder_scale(self) -> float:
        """The encoder's rate as a multiple of ``--lr`` this epoch (the strategy's: 0 while frozen,
        ``--encoder-lr-mult`` when fine-tuned, 1 from scratch)."""
        return self.strategy.encoder_scale(self.epoch, self.epochs, {"body_lr_mult": self.opts.encoder_lr_mult})

    def rate_groups(self) -> list[tuple[dict[str, Any], float]]:
        """(encoder, rest) as ``strategy_optimizer`` built them; the encoder group is absent when the
        strategy never trains it."""
        groups = self.optimizer.param_groups
        return list(zip(groups, [self.encoder_scale(), 1.0][-len(groups) :]))

    def save_run(self, scores: dict[str, Any]) -> None:
        """The current weights as the run, with the held-out scores that made them the best."""
        weights = {k: v.detach().cpu().contiguous() for k, v in unwrap(self.model).state_dict().items()}
        numbers = {k: v for k, v in scores.items() if isinstance(v, (int, float))}
        save_run(
            self.run_dir, task=self.task, state_dict=weights, model=self.model_spec(), class_names=self.data.classes,
            preprocessing=self.preprocessing(), metrics={"epoch": self.epoch, **numbers},
            extra={"options": asdict(self.opts), "data": self.data.summary(), self.weights_key: self.weights_source},
            performance=self.performance,
        )  # fmt: skip

    def finish(self, seconds: float, write: bool, name: str = "") -> ResultT:
        label = name or self.opts.strategy
        if not write:
            return self.result_type(label, self.run_dir, self.run_dir / "report.html", {}, seconds)
        return self.write_report(label, seconds)
