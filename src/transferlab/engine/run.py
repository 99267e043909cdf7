"""The recipe contract: every training task is a :class:`Recipe` plus an options dataclass, and
:func:`run` does, once for all of them, what surrounds the loop.

    run(recipe_cls, data, out=..., resume=..., **options)
      state   = read_checkpoint(resume, recipe_cls.task)          # last, else previous
      opts    = resumed_options(state, given) or Options(**given); opts.check(); recipe_cls.check(opts)
      fabric  = fabric_for(opts); opts = recipe_cls.configure(opts, fabric, resumed)
      opts    = opts.for_device(fabric's device)                     # unset device defaults, announced
      run_dir = resume or out or runs/<task>/<name>-<time>
      seed_everything(opts.seed); recipe = recipe_cls(data, opts, fabric, run_dir)
      with TrainingSession(RunSpec(task, run_dir, recipe.fingerprint(), fixed options, command), ...):
          recipe.restore(state); recipe.fit(session, stop_after)      # the recipe's own loop
      recipe.finish(seconds, write=complete and rank 0)               # the run, the report, a result

A recipe builds its data and networks in ``__init__``, trains in ``fit`` (a loop that reads top
to bottom and calls the session's advance/log/step_boundary), and captures and restores its whole
state. It never writes outside ``finish(write=True)`` and rank-0-guarded pictures, never creates
a Fabric, never reads a checkpoint: that is this module's and the session's job.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from transferlab.engine.memory import keep_freed_memory
from transferlab.engine.options import TrainOptions

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from transferlab.engine.session import TrainingSession

#: A recipe's options dataclass and the result its ``finish`` returns (what ``run`` returns).
OptionsT = TypeVar("OptionsT", bound=TrainOptions)
ResultT = TypeVar("ResultT")


class Recipe(ABC, Generic[OptionsT, ResultT]):
    """One training task's loop and state; :func:`run` builds it and drives it. Step-counted
    recipes build on ``engine.steps.StepRecipe``, epoch recipes on ``engine.epochs.EpochRecipe``."""

    #: The task's name: checkpoints carry it, and ``runs/<task>/`` holds its runs by default.
    task: ClassVar[str]
    #: Its options dataclass (a :class:`TrainOptions`).
    options: ClassVar[type[TrainOptions]]
    #: The columns of ``metrics.csv``; the first is the position a resume cuts the log back to.
    metrics: ClassVar[tuple[str, ...]] = ("step", "loss")
    #: The command that continues a run (said when a run stops); ``{data}`` is DATA.
    command: ClassVar[str] = ""
    #: The progress title and the default run folder's name, formatted with the options' fields.
    title_format: ClassVar[str] = "training"
    name_format: ClassVar[str] = "run"
    #: How ``--lr auto`` and ``lr-find`` read the LR finder's curve (``rate_finder.RULES``),
    #: chosen per task by training a grid of rates to the end (BENCHMARKS.md, "lr-find").
    finder_rule: ClassVar[str] = "steep"

    opts: OptionsT
    fabric: Fabric
    run_dir: Path
    step: int = 0

    @abstractmethod
    def __init__(self, data: Any, opts: OptionsT, fabric: Fabric, run_dir: Path) -> None:
        """Read the data, build the networks and optimisers on ``fabric``."""

    @classmethod
    def check(cls, opts: OptionsT) -> None:
        """Refuse names the task's registries do not know (architectures, strategies, runs named
        by the options), before any process starts; the options class checks plain values."""
        return None  # a task whose options name nothing from a registry has nothing to check

    @classmethod
    def configure(cls, opts: OptionsT, fabric: Fabric, resumed: bool) -> OptionsT:
        """The options completed for this device (defaults that depend on it); unchanged by default."""
        return opts

    @classmethod
    def run_name(cls, opts: OptionsT) -> str:
        """The default run folder's name, before its time stamp."""
        return cls.name_format.format(**asdict(opts))

    @classmethod
    def resume_command(cls, data: Any) -> str:
        return cls.command.format(data=data if isinstance(data, (str, Path)) else "DATA")

    def title(self) -> str:
        return self.title_format.format(**asdict(self.opts))

    def also_takes(self) -> str:
        """Work beyond the training steps that the session's duration estimate leaves out."""
        return ""

    def rate_groups(self) -> list[tuple[dict[str, Any], float]]:
        """The optimizer groups the LR finder sets (``engine/rate_finder.py``), each with its rate as
        a multiple of ``--lr`` at the start of training (a body at ``--body-lr-mult`` keeps that
        ratio, a frozen group 0): by default ``self.optimizer``'s groups as built (``initial_lr``
        where a scheduler has already moved them)."""
        base = float(self.opts.lr)  # type: ignore[attr-defined]
        return [(g, g.get("initial_lr", g["lr"]) / base) for g in self.optimizer.param_groups]  # type: ignore[attr-defined]

    @abstractmethod
    def fingerprint(self) -> str:
        """A digest of the exact training data: a resume on other data is refused."""

    def total(self) -> int:
        """Units of progress of the whole run: ``opts.steps`` (an epoch-based recipe says its own)."""
        return int(self.opts.steps)

    @abstractmethod
    def fit(self, session: TrainingSession, stop_after: int | None = None) -> None:
        """The loop, from the restored position; ``stop_after`` ends early (as if interrupted)."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """The whole training state, for a checkpoint."""

    @abstractmethod
    def restore(self, state: dict[str, Any]) -> None: ...

    @property
    def complete(self) -> bool:
        """Whether the whole budget is trained (not stopped early): ``step`` reached ``total()``."""
        return int(self.step) >= self.total()

    @abstractmethod
    def finish(self, seconds: float, write: bool, name: str = "") -> ResultT:
        """The task's result; with ``write`` (rank 0, complete) also the run and its report."""


def fixed_options(opts: TrainOptions) -> dict[str, Any]:
    """The options a resumed run must keep: every one but those marked changeable on resume."""
    from transferlab.engine.options import changeable_on_resume

    changeable = changeable_on_resume(type(opts))
    return {k: v for k, v in asdict(opts).items() if k not in changeable}


def _device_defaults(opts: TrainOptions, fabric: Any, task: str, announce: bool) -> TrainOptions:
    """Fill the options left unset with the device's defaults; a new run says which it took, so a
    slow or weak run is never a mystery."""
    from transferlab.progress import announce as say

    unset, kind = opts.unset_defaults(), fabric.device.type
    opts = opts.for_device(kind)
    if unset and announce and getattr(fabric, "global_rank", 0) == 0:
        chosen = " ".join(f"--{k.replace('_', '-')} {getattr(opts, k)}" for k in unset)
        why = f"; {opts.device_defaults_why}" if opts.device_defaults_why else ""
        say(f"{task}: the defaults for {'a CPU' if kind == 'cpu' else 'a GPU'}: {chosen} (set any of them to "
            f"override{why})")  # fmt: skip
    return opts


def _prepared(
    recipe_cls: type[Recipe[OptionsT, ResultT]], state: dict[str, Any] | None, options: dict[str, Any], fabric: Any
) -> tuple[OptionsT, Any]:
    """The run's checked options, completed for its device, and its Fabric."""
    from transferlab.engine.fabric import fabric_for
    from transferlab.engine.session import resumed_options

    given = {k: v for k, v in options.items() if v is not None}
    opts = resumed_options(state, given, recipe_cls.options) if state else recipe_cls.options(**given)
    opts.check()
    recipe_cls.check(opts)
    fabric = fabric or fabric_for(opts)
    opts = recipe_cls.configure(opts, fabric, resumed=state is not None)
    return _device_defaults(opts, fabric, recipe_cls.task, announce=state is None), fabric


def find_rate_of(recipe_cls: type[Recipe[OptionsT, ResultT]], data: Any, *, fabric: Any = None,
                 sweep: dict[str, Any] | None = None, **options: Any) -> Any:  # fmt: skip
    """The LR finder alone (``transferlab lr-find``): sweep ``recipe_cls`` on DATA with these
    options (``sweep``: start, end, steps, rule) and return its ``RateFinding``; nothing is trained."""
    from transferlab.engine.rate_finder import find_rate

    opts, fabric = _prepared(recipe_cls, None, {**options, "lr": None}, fabric)
    return find_rate(recipe_cls, data, opts, fabric, **(sweep or {}))


def run(
    recipe_cls: type[Recipe[OptionsT, ResultT]],
    data: Any,
    *,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    stop_after: int | None = None,
    fabric: Any = None,
    name: str = "",
    observe: Callable[[dict[str, Any]], None] | None = None,
    **options: Any,
) -> ResultT:
    """Train ``recipe_cls`` on DATA into ``out`` (or continue the run ``resume`` exactly) and return
    what its ``finish`` returns. Options left ``None`` take their defaults; ``observe`` sees every
    row the run logs (rank 0), as it is logged: ``tune`` reports held-out scores to its pruner."""
    from transferlab.engine import rng
    from transferlab.engine.session import RunSpec, TrainingSession, read_checkpoint
    from transferlab.runs import default_run_dir

    start = time.perf_counter()
    keep_freed_memory()  # each step's tensors reuse the last step's memory (engine/memory.py), the finder's too
    state = read_checkpoint(Path(resume), recipe_cls.task) if resume else None
    opts, fabric = _prepared(recipe_cls, state, options, fabric)
    finding = None
    if opts.rate_is_found():  # --lr auto: a sweep of this very recipe picks the rate (a resume keeps it)
        from transferlab.engine.rate_finder import find_rate
        from transferlab.progress import announce

        finding = find_rate(recipe_cls, data, opts, fabric)
        opts = replace(opts, lr=finding.suggestion)
        if getattr(fabric, "global_rank", 0) == 0:
            announce(f"{recipe_cls.task}: {finding.sentence()}")
    run_dir = (
        Path(resume) if resume else Path(out) if out else default_run_dir(recipe_cls.task, recipe_cls.run_name(opts))
    )
    rng.seed_everything(opts.seed)
    recipe = recipe_cls(data, opts, fabric, run_dir)
    what = data if isinstance(data, (str, Path)) else "DATA"
    spec = RunSpec(
        recipe_cls.task, run_dir, recipe.fingerprint(), fixed_options(opts), recipe_cls.command.format(data=what)
    )
    session = TrainingSession(
        spec,
        fabric,
        total=recipe.total(),
        title=recipe.title(),
        state=state,
        metrics=recipe_cls.metrics,
        logger=opts.logger,
        checkpoint_every=getattr(opts, "checkpoint_every", 0),
        also_takes=recipe.also_takes,
        observe=observe,
    )
    with session:
        if finding is not None and session.is_writer:
            finding.write(run_dir)  # lr_find.json and .png: the run's report shows them
        if state is not None:
            recipe.restore(state)
            session.retotal(recipe.total())  # a restored budget may have cut the epochs
        recipe.fit(session, stop_after)
        session.flush()
    write = recipe.complete and getattr(fabric, "global_rank", 0) == 0
    return recipe.finish(time.perf_counter() - start, write=write, name=name)
