"""The options every training command shares (devices, precision, logging, resume), declared once."""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.errors import UsageError

LOGGERS = ("csv", "tensorboard")


@dataclass
class TrainOptions:
    """Inherited by each task's options dataclass; the CLI offers every field as a flag."""

    seed: int = 0
    accelerator: str = "auto"  # auto | cpu | gpu/cuda | mps
    devices: int | str = 1  # devices per node, or "auto"
    num_nodes: int = 1
    precision: str | None = None  # None: bf16-mixed on a GPU, 32-true on the CPU
    compile: bool = False  # torch.compile the trained networks
    logger: str = "csv"  # csv (always written) | tensorboard (also, through Fabric's logger)

    def check_training(self) -> None:
        if self.logger not in LOGGERS:
            raise UsageError(f"unknown --logger '{self.logger}'", f"use one of: {', '.join(LOGGERS)}")
        if isinstance(self.devices, str) and self.devices.isdigit():
            self.devices = int(self.devices)
        if self.num_nodes < 1 or (isinstance(self.devices, int) and self.devices < 1):
            raise UsageError("--devices and --num-nodes must be at least 1", "e.g. --devices 4 --num-nodes 2")


def fabric_for(opts: TrainOptions) -> object:
    """A launched Fabric for these options (the one place a training task gets its devices)."""
    from transferlab.engine.fabric import make_fabric

    opts.check_training()
    return make_fabric(opts.accelerator, opts.devices, opts.num_nodes, opts.precision)
