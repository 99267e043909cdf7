"""The learning-rate finder (Smith 2015, "Cyclical Learning Rates", section 3.3; as fastai's
``lr_find`` does it): train a few hundred steps while the rate grows exponentially from ``start``
to ``end``, record the loss at each, and suggest a rate from the smoothed curve.

It runs the task's own recipe (the same data, network, strategy, augmentation and loss as the real
run) through a stand-in for the training session: every recipe reports each step's loss through
``session.check_finite``, which is where the sweep reads the loss and sets the next rate on the
recipe's optimizer groups (``Recipe.rate_groups``: each group keeps its ratio to ``--lr``, so an
encoder at ``--encoder-lr-mult`` stays at that fraction). The swept recipe is thrown away; the real
run builds its own from the same seed, so it starts from exactly the weights it would have had.

Why not a library: fastai's finder needs fastai's Learner, and torch-lr-finder (unmaintained since
2021) wraps a plain model, optimizer and loader; neither runs a recipe's own loop (crops, mixup,
teacher terms, data-parallel ranks), which is what makes the suggestion the one for this run.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import tempfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from transferlab.errors import TrainingError

#: The rate an options field takes to ask for the finder (``--lr auto``).
AUTO = "auto"
#: The suggestion rules (see :func:`suggest`).
RULES = ("valley", "steep", "fall", "minimum")
#: The share of the loss's fall that the ``fall`` rule waits for (only 0.9 measured: BENCHMARKS.md).
FALL = 0.9
#: Options a sweep overrides when the task has them: no held-out scoring, no time or step budget,
#: no end of training inside the sweep (its steps may span many epochs of a small set).
SWEEP_OVERRIDES: dict[str, Any] = {"eval_every": 10**6, "time_budget": 0, "max_steps": 0, "patience": 0}
#: The sweep stops when the smoothed loss passes this multiple of its minimum (it has diverged).
DIVERGED = 4.0
#: Exponential smoothing of the recorded losses (with bias correction). fastai smooths with 0.98:
#: over a 100-step sweep that lags the curve by tens of steps (on synthetic curves its suggestion
#: sat 4.7x above the fall's centre, against 3.3x at 0.9; tests/test_tune.py draws such curves).
SMOOTHING = 0.9


class SweepDone(Exception):
    """Raised from the stand-in session to end the recipe's loop when the sweep is over."""


@dataclass
class RateFinding:
    """A sweep's curve and its suggestion: ``rates[i]`` trained step i, whose loss (before that
    step's update) is ``losses[i]``; ``smoothed`` is the curve the rules read."""

    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float
    rule: str
    steps: int
    seconds: float = 0.0
    others: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, folder: Path) -> Path:
        """``lr_find.json`` and ``lr_find.png`` in ``folder`` (a run's report shows them)."""
        from transferlab.io import write_json
        from transferlab.reports.plots import rate_curve

        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "lr_find.json", self.to_json())
        return rate_curve(self.rates, self.smoothed, self.suggestion, self.rule, self.others, folder / "lr_find.png")

    def sentence(self) -> str:
        return (f"the LR finder suggests --lr {self.suggestion:.2g} ({self.rule} rule; {len(self.losses)} steps from "
                f"{self.rates[0]:.0e} to {self.rates[-1]:.1e}, {self.seconds:.0f} s)")  # fmt: skip


def smooth(losses: list[float], beta: float = SMOOTHING) -> list[float]:
    """Exponential moving average with bias correction (the first values are not pulled to 0)."""
    average, out = 0.0, []
    for i, loss in enumerate(losses, 1):
        average = beta * average + (1 - beta) * loss
        out.append(average / (1 - beta**i))
    return out


def _trimmed(rates: list[float], smoothed: list[float]) -> tuple[list[float], list[float]]:
    """The curve without its first tenth (the smoothing's warm-up) and its last few points (the
    blow-up), as fastai reads it."""
    n = len(rates)
    low, high = n // 10, max(n // 10 + 2, n - 5)
    return rates[low:high], smoothed[low:high]


def _fall(losses: list[float]) -> tuple[int, float, float]:
    """(index of the lowest point, the starting level, the fall from that level to the lowest)."""
    lowest = min(range(len(losses)), key=losses.__getitem__)
    level = statistics.median_low(losses[: max(1, lowest // 5)])  # the starting level
    return lowest, level, level - losses[lowest]


def _fallen(losses: list[float], fraction: float, start: int = 0) -> int:
    """The first index (from ``start``) where the loss has made ``fraction`` of its fall."""
    lowest, level, fall = _fall(losses)
    if fall <= 0:
        return lowest
    return next(i for i in range(start, lowest + 1) if losses[i] <= level - fraction * fall)


def _valley(losses: list[float]) -> int:
    """The index in the middle of the valley: of the curve up to its lowest point, the stretch from
    where the loss has made a tenth of its fall (from its starting level to its lowest) to where it
    has made nine tenths. Counting a fraction of the whole fall, not single steps down, keeps the
    flat noisy start of a curve out of the valley (fastai's longest falling subsequence can chain
    through that noise and suggest a rate too small by 10x; measured on noisy synthetic curves in
    tests/test_tune.py)."""
    begins = _fallen(losses, 0.1)
    ends = _fallen(losses, 0.9, begins)
    return (begins + ends) // 2  # the rates are log-spaced: the index's middle is the geometric one


def suggest(rates: list[float], smoothed: list[float], rule: str = "steep") -> tuple[float, dict[str, float]]:
    """The suggested rate under ``rule`` and under every rule (for the plot):

    - ``steep``: where the smoothed loss falls fastest against log(rate);
    - ``valley`` (fastai's default rule is also called valley, read differently): the middle of the
      stretch where the smoothed loss makes the middle 80% of its fall; robust to a curve whose
      steepest point is noise, but a slow early drift of the loss pulls it low;
    - ``fall``: where the smoothed loss has made ``FALL`` (nine tenths) of its fall from its starting
      level to its lowest point: late on the fall, short of the lowest point where it turns;
    - ``minimum``: a tenth of the rate at the lowest smoothed loss (the classic rule of thumb).
    """
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule}")
    xs, ys = _trimmed(rates, smoothed)
    if len(xs) < 3:
        raise TrainingError(
            f"the LR finder's loss diverged after {len(rates)} step(s), from {rates[0]:.0e}",
            "give --lr a number, or a smaller start rate to lr-find (--start)",
        )
    logs = [math.log(x) for x in xs]
    slopes = [(ys[i + 1] - ys[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(1, len(xs) - 1)]
    chosen = {
        "valley": xs[_valley(ys)],
        "steep": xs[1 + min(range(len(slopes)), key=slopes.__getitem__)],
        "fall": xs[_fallen(ys, FALL)],
        "minimum": xs[min(range(len(ys)), key=ys.__getitem__)] / 10,
    }
    return chosen[rule], chosen


class SweepSession:
    """The stand-in for ``TrainingSession`` a swept recipe trains under: it writes nothing, shows
    one progress bar, and at each step's loss records it and sets the next rate."""

    def __init__(self, recipe: Any, fabric: Any, start: float, end: float, steps: int, progress: Any) -> None:
        self.fabric, self.progress = fabric, progress
        self.groups = recipe.rate_groups()
        self.rates = [start * (end / start) ** (i / max(1, steps - 1)) for i in range(steps)]
        self.losses: list[float] = []
        self.run_dir = recipe.run_dir

    def set_rate(self, rate: float) -> None:
        for group, scale in self.groups:
            group["lr"] = rate * scale

    def check_finite(self, value: Any, position: Any = None, remedy: str = "") -> None:
        """The step's loss (averaged over the ranks, so every rank reads the same curve); then the
        rate of this step's update; the sweep ends at the last rate or once the loss has blown up."""
        import torch

        loss = torch.as_tensor(value, dtype=torch.float32).detach().mean()
        if getattr(self.fabric, "world_size", 1) > 1:
            loss = self.fabric.all_reduce(loss, reduce_op="mean")
        loss = float(loss)
        step = len(self.losses)
        if step >= len(self.rates) or not math.isfinite(loss):
            raise SweepDone
        self.losses.append(loss)
        smoothed = smooth(self.losses)
        if step > 10 and smoothed[-1] > DIVERGED * min(smoothed):
            raise SweepDone
        self.set_rate(self.rates[step])
        self.progress.advance(f"lr {self.rates[step]:.1e} loss {smoothed[-1]:.3f}")

    # What a recipe's loop also calls on its session: nothing to do during a sweep.
    def advance(self, info: str | None = None, steps: int = 1) -> None:
        return None

    def log(self, *rows: dict[str, Any]) -> None:
        return None

    def retotal(self, total: int) -> None:
        return None

    def step_boundary(self, *args: Any, **kwargs: Any) -> None:
        return None

    def diverged(self, what: str, remedy: str) -> None:
        raise SweepDone


def sweep_options(opts: Any, start: float) -> Any:
    """The options a sweep trains with: the run's own, at the start rate, without scoring or budgets,
    and with training that does not end before the sweep does."""
    overrides = {k: v for k, v in SWEEP_OVERRIDES.items() if hasattr(opts, k)}
    for name in ("epochs", "steps"):  # long enough that the sweep, not the schedule, ends the loop
        if isinstance(getattr(opts, name, None), int):
            overrides[name] = max(getattr(opts, name), 10**4)
    return replace(opts, lr=start, **overrides)


def find_rate(
    recipe_cls: Any,
    data: Any,
    opts: Any,
    fabric: Any,
    *,
    start: float = 1e-7,
    end: float = 10.0,
    steps: int = 100,
    rule: str | None = None,
) -> RateFinding:
    """Sweep ``recipe_cls`` on DATA with ``opts`` (device defaults filled) and suggest ``--lr`` by
    ``rule`` (default: the recipe's ``finder_rule``)."""
    import gc
    import time

    from transferlab.engine import rng
    from transferlab.progress import StepProgress

    if not 0 < start < end or steps < 10:
        raise ValueError("the sweep needs 0 < start < end and at least 10 steps")
    began = time.perf_counter()
    rng.seed_everything(opts.seed)
    enabled = getattr(fabric, "global_rank", 0) == 0
    with tempfile.TemporaryDirectory(prefix="transferlab-lr-find-") as scratch:
        recipe = recipe_cls(data, sweep_options(opts, start), fabric, Path(scratch))
        with StepProgress(steps, 0, f"{recipe_cls.task}: finding the learning rate", enabled_here=enabled) as bar:
            session = SweepSession(recipe, fabric, start, end, steps, bar)
            with contextlib.suppress(SweepDone):  # the sweep's end, raised from inside the recipe's loop
                recipe.fit(session, None)
        del recipe
        gc.collect()
    losses = session.losses
    rates, smoothed = session.rates[: len(losses)], smooth(losses)
    rule = rule or recipe_cls.finder_rule
    rate, others = suggest(rates, smoothed, rule)
    return RateFinding(rates, losses, smoothed, rate, rule, steps, time.perf_counter() - began, others)
