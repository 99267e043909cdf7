"""Options declared once: each task's options are a dataclass whose fields carry their help and
choices (:func:`option`); the CLI flags, their help and the choice checks are generated from it
(``cli/options.py``), and the Python API takes the same names."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from transferlab.errors import UsageError


def option(
    default: Any,
    help: str = "",
    *,
    choices: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    resumable: bool = False,
) -> Any:
    """A dataclass field with its CLI help, allowed values and (optionally) its own flag names;
    ``flags=()`` means ``--field-name``; ``help=None`` keeps it out of the CLI. ``resumable``: a
    resumed run may change it (its budget, where and how it runs, how often it reports); every
    other option is fixed on resume, since changing it would not continue the same run."""
    meta = {"help": help, "choices": choices, "flags": flags, "resumable": resumable}
    return field(default=default, metadata=meta)


def changeable_on_resume(options_cls: type) -> tuple[str, ...]:
    """The options of ``options_cls`` a resumed run may change (marked ``resumable``)."""
    return tuple(f.name for f in fields(options_cls) if f.metadata.get("resumable"))


def check_share(name: str, value: float) -> None:
    """A share of the training images (``--corrupt``): from 0 (none) to 1 (all)."""
    if not 0 <= value <= 1:
        flag = name.replace("_", "-")
        raise UsageError(f"--{flag} {value} is not a share between 0 and 1", f"e.g. --{flag} 0.5")


@dataclass(frozen=True)
class CpuDefaults:
    """How a task's networks run on a CPU by default, as measured (``benchmarks/cpu_speed.py``):
    ``channels_last`` where it was faster, ``bf16`` where bf16-mixed was faster *and* held the
    task's accuracy (used only on CPUs with native bf16); ``why`` says why bf16 is off."""

    channels_last: bool = True
    bf16: bool = True
    why: str = ""
    #: Whether a GPU runs the task in bf16-mixed (its default): off where bf16 itself costs accuracy
    #: (box coordinates decoded in bf16 land on a grid of several pixels at 512 px).
    gpu_bf16: bool = True


#: What every ``--lr`` help adds: the rate may be left to the LR finder (``engine/rate_finder.py``).
FOUND_RATE = "; 'auto': the LR finder's suggestion, found as the run starts."

PRECISIONS = ("32", "32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64")


@dataclass
class TrainOptions:
    """Inherited by each task's options dataclass; the CLI offers every field as a flag."""

    #: A task overrides this with what was measured for its networks (engine/performance.py).
    cpu_defaults: ClassVar[CpuDefaults] = CpuDefaults()
    #: Defaults that depend on the device, for fields left ``None``: ``{"cpu": {...}, "gpu": {...}}``
    #: (``engine.run`` fills them once the device is known, and says which it took).
    device_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Why those defaults, in one clause the run prints beside them ("chosen by ... on ...").
    device_defaults_why: ClassVar[str] = ""

    seed: int = option(0, "Seed of every random draw (weights, batches, augmentation).")
    accelerator: str = option(
        "auto", "auto, cpu, gpu (cuda) or mps.", choices=("auto", "cpu", "gpu", "cuda", "mps"), resumable=True
    )
    devices: int | str = option(1, "Devices per node (e.g. 4: data-parallel), or 'auto'.", resumable=True)
    num_nodes: int = option(1, "Machines (multi-node runs, e.g. under SLURM).", resumable=True)
    precision: str | None = option(
        None,
        "Default: bf16-mixed on a GPU, and on a CPU with native bf16 (AVX-512 BF16, AMX) where the task "
        "was measured to keep its accuracy; else 32-true.",
        choices=PRECISIONS,
        resumable=True,
    )
    channels_last: bool | None = option(
        None,
        "NHWC memory format. Default: on a GPU, and on the CPU where it was measured faster for the task.",
        resumable=True,
    )
    compile: bool = option(
        False, "torch.compile the trained networks (measured not to pay on a CPU for short runs).", resumable=True
    )
    logger: str = option(
        "csv", "metrics.csv always; tensorboard adds TensorBoard logs.", choices=("csv", "tensorboard"), resumable=True
    )

    def check(self) -> None:
        """Refuse impossible values with a cause and a remedy; a task extends it with its own."""
        self.check_training()

    def unset_defaults(self) -> list[str]:
        """The device-dependent options left unset (the run says what it chose for them)."""
        return [k for k in self.device_defaults.get("cpu", {}) if getattr(self, k) is None]

    def for_device(self, kind: str) -> Any:
        """These options with every unset device-dependent one filled for ``kind`` ("cpu", else a GPU)."""
        chosen = self.device_defaults.get("cpu" if kind == "cpu" else "gpu", {})
        return replace(self, **{k: v for k, v in chosen.items() if getattr(self, k) is None})

    def parameters_may_go_unused(self) -> bool:
        """Whether some parameters the optimizer holds get no gradient in some steps (classify's
        frozen and gradual strategies switch groups off): data-parallel runs then look for them
        every step, as DDP requires."""
        return False

    def check_training(self) -> None:
        """The generated checks: every field with choices holds one of them; device counts."""
        for spec in fields(self):
            allowed = spec.metadata.get("choices")
            value = getattr(self, spec.name)
            if allowed and value is not None and str(value) not in allowed:
                flag = f"--{spec.name.replace('_', '-')}"
                raise UsageError(f"{flag} '{value}' is not one of the choices", f"use one of: {', '.join(allowed)}")
        if isinstance(self.devices, str) and self.devices.isdigit():
            self.devices = int(self.devices)
        if self.num_nodes < 1 or (isinstance(self.devices, int) and self.devices < 1):
            raise UsageError("--devices and --num-nodes must be at least 1", "e.g. --devices 4 --num-nodes 2")

    def check_rate(self) -> None:
        """``--lr``: a positive number (a numeric string from the command line becomes one), or
        ``auto``: the LR finder's suggestion, found as the run starts (``engine/rate_finder.py``)."""
        value = self.lr
        if isinstance(value, str) and value != "auto":
            try:
                value = float(value)
            except ValueError:
                raise UsageError(
                    f"--lr '{value}' is neither a number nor auto", "e.g. --lr 1e-3, or --lr auto"
                ) from None
        if value != "auto" and not value > 0:
            raise UsageError(f"--lr {value} must be positive", "e.g. --lr 1e-3, or --lr auto (the LR finder)")
        self.lr = value

    def rate_is_found(self) -> bool:
        """Whether ``--lr auto`` asks the LR finder for the run's rate."""
        return getattr(self, "lr", None) == "auto"

    def check_counts(self, *names: str) -> None:
        """Each named count is at least 1 where set (an unset device default is filled later); the
        remedy's example is the option's own default, so it is one the task accepts."""
        defaults = {f.name: f.default for f in fields(self)}
        for name in names:
            value = getattr(self, name)
            if value is not None and value < 1:
                flag, example = f"--{name.replace('_', '-')}", defaults[name]
                if example is None:  # a device default: the CPU's
                    example = self.device_defaults.get("cpu", {}).get(name, 1)
                raise UsageError(f"{flag} {value} must be at least 1", f"e.g. {flag} {example}")


@dataclass
class EpochOptions(TrainOptions):
    """The options of an epoch recipe (``engine/epochs.py``): its budgets, in steps and in minutes.
    Both cut whole epochs; the minutes are measured as the run goes, so a slow machine (or a slow
    hour of one) trains fewer epochs rather than overrunning."""

    max_steps: int | None = option(None, "At most this many steps: fewer epochs when they would take more (0: no cap).")
    time_budget: float | None = option(
        None, "Minutes of training and held-out scoring: fewer epochs when the pace measured as it goes says they "
        "would take more (the run says what it cut). Default: on a CPU the task's (said at the start), on a GPU "
        "none; 0: no limit, for a run that repeats exactly elsewhere.", resumable=True,
    )  # fmt: skip

    def check_budgets(self) -> None:
        for name, remedy in (("max_steps", "a number of steps"), ("time_budget", "a number of minutes")):
            value = getattr(self, name)
            if value is not None and value < 0:
                flag = f"--{name.replace('_', '-')}"
                raise UsageError(f"{flag} {value} is negative", f"give 0 (no cap) or {remedy}")
