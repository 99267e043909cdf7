"""A tuning study's search space over a task's options: one entry per option, read from the task's
record (``registry.Tuning.space``) or a YAML file (``--space``), checked against the options class.

    lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a float range (log-uniform with log: true)
    epochs: {low: 2, high: 8}                      # both ends whole numbers: an integer range
    img_size: {low: 128, high: 256, step: 32}      # an integer range in steps
    strategy: [full, gradual, llrd]                # a list: one of these values

Options given on the command line are fixed for every trial and leave the space. Torch-free: the
CLI checks a space before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from transferlab.errors import UsageError

EXAMPLE = "e.g. lr: {low: 1.0e-4, high: 1.0e-2, log: true} or strategy: [full, gradual]"


@dataclass(frozen=True)
class Dimension:
    """One searched option: a list of ``choices``, or a ``low``..``high`` range (``integer`` when
    both ends are whole numbers, log-uniform with ``log``, in ``step``s where given)."""

    name: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    integer: bool = False

    def suggest(self, trial: Any) -> Any:
        """This dimension's value for an Optuna trial."""
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def describe(self) -> str:
        if self.choices:
            return " | ".join(map(str, self.choices))
        return (
            f"{self.low:g} .. {self.high:g}{' (log)' if self.log else ''}{f' step {self.step:g}' if self.step else ''}"
        )


def _number(name: str, key: str, value: Any) -> float:
    """YAML reads 1e-4 (no dot) as a string: numbers are taken from strings too."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"the space's {name}.{key} '{value}' is not a number", EXAMPLE) from None


def dimension(name: str, spec: Any) -> Dimension:
    """One entry of a space, checked: a non-empty list, or a range with low < high."""
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise UsageError(f"the space's {name} has no choices", EXAMPLE)
        return Dimension(name, choices=tuple(spec))
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) or set(spec) - {"low", "high", "log", "step"}:
        raise UsageError(f"the space's {name} is neither a list of values nor {{low, high[, log, step]}}", EXAMPLE)
    low, high = _number(name, "low", spec["low"]), _number(name, "high", spec["high"])
    step = _number(name, "step", spec["step"]) if spec.get("step") is not None else None
    log = bool(spec.get("log", False))
    if not low < high:
        raise UsageError(f"the space's {name} is an empty range ({low:g} .. {high:g})", "give low < high")
    if log and low <= 0:
        raise UsageError(f"the space's {name} is log-scaled from {low:g}", "give a low above 0, or log: false")
    if step is not None and (step <= 0 or (log and step)):
        raise UsageError(f"the space's {name} has step {step:g}", "give a positive step, and no step with log")
    whole = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("low", "high"))
    return Dimension(
        name, low=low, high=high, log=log, step=step, integer=whole and (step is None or step == int(step))
    )


def read_space(path: Path) -> dict[str, Any]:
    """A YAML (or JSON) file of ``option: spec`` lines."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--space {path} does not exist", "give a YAML file of `option: spec` lines")
    try:
        values = yaml.safe_load(path.read_text())
    except Exception as exc:  # noqa: BLE001 - yaml's own error types
        raise UsageError(f"--space {path} is not valid YAML ({str(exc).splitlines()[0]})", "check its syntax") from None
    if not isinstance(values, dict) or not values:
        raise UsageError(f"--space {path} is not a mapping of options", "write one `option: spec` per line")
    return {str(k).replace("-", "_"): v for k, v in values.items()}


def search_space(options_cls: type, spec: dict[str, Any], fixed: dict[str, Any]) -> list[Dimension]:
    """The dimensions of ``spec`` over ``options_cls``, less the options ``fixed`` on the command
    line; an option the task does not have is refused, and so is a space left empty."""
    known = {f.name for f in fields(options_cls) if f.metadata.get("help") is not None}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise UsageError(f"the search space names option(s) the task does not have: {', '.join(unknown)}",
                         "use the names of the task's --help (e.g. lr, weight_decay)")  # fmt: skip
    dims = [dimension(name, value) for name, value in spec.items() if name not in fixed]
    if not dims:
        raise UsageError("every option of the search space is fixed on the command line", "leave one of them out")
    return dims
