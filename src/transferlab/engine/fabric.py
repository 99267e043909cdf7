"""Lightning Fabric set-up: devices, nodes, precision, and the defaults that fit each device."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from transferlab.engine.options import PRECISIONS, CpuDefaults, TrainOptions
from transferlab.engine.performance import choose, device_type, performance_of
from transferlab.errors import UsageError


def global_rank() -> int:
    """This process's rank in a data-parallel run, 0 outside one. Read before a Fabric exists too:
    the processes Fabric starts for ranks > 0 rerun the whole command, study code included, and
    learn their rank from the environment it gives them (as torchrun and SLURM do)."""
    import os
    import sys

    for name in ("lightning_fabric.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        module = sys.modules.get(name)
        rank = getattr(getattr(module, "rank_zero_only", None), "rank", None)
        if rank is not None:
            return int(rank)
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def is_main_process() -> bool:
    """Whether this process writes: rank 0 (every study-level file is written by it alone)."""
    return global_rank() == 0


def fabric_class() -> Any:
    try:
        from lightning_fabric import Fabric
    except ImportError:  # the full `lightning` package ships Fabric as lightning.fabric
        from lightning.fabric import Fabric
    return Fabric


def make_fabric(
    accelerator: str = "auto",
    devices: int | str = "auto",
    num_nodes: int = 1,
    precision: str | None = None,
    strategy: str = "auto",
    *,
    channels_last: bool | None = None,
    compile_module: bool = False,
    find_unused_parameters: bool = False,
    cpu_defaults: CpuDefaults | None = None,
) -> Any:
    """A launched Fabric whose precision and memory format follow ``engine.performance.choose``
    for its device (``None``: the measured default); ``performance_of(fabric)`` returns the choice."""
    import torch

    if precision is not None and precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}'", f"use one of: {', '.join(PRECISIONS)}")
    Fabric = fabric_class()
    chosen = choose(
        device_type(accelerator),
        cpu_defaults,
        precision=precision,
        channels_last=channels_last,
        compile=compile_module,
    )
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            "--accelerator gpu was asked for but no CUDA GPU is available", "use --accelerator cpu (or auto)"
        )
    if strategy == "auto" and devices not in ("auto", 1, "1"):
        strategy = "ddp_find_unused_parameters_true" if find_unused_parameters else "ddp"
    fabric = Fabric(
        accelerator=accelerator, devices=devices, num_nodes=num_nodes, precision=chosen.precision, strategy=strategy
    )
    fabric.launch()
    fabric.transferlab_performance = chosen  # read back through engine.performance.performance_of
    _announce(fabric, chosen)
    return fabric


def _announce(fabric: Any, chosen: Any) -> None:
    """Say once, on rank 0, how the networks will run (the run records it in run.json too)."""
    from transferlab.progress import announce

    if fabric.global_rank == 0:
        announce(f"networks run as {chosen.describe()}")


@contextlib.contextmanager
def inner_gradients() -> Iterator[None]:
    """Allow ``torch.autograd.grad`` through Fabric modules (a gradient penalty such as R1). Under
    mixed precision Fabric refuses every backward pass it does not run itself (a hook on module
    outputs); a penalty's inner gradient is one by design, so this sets the flag
    ``fabric.backward`` sets (Fabric has no public switch for it)."""
    try:
        from lightning_fabric import wrappers
    except ImportError:
        from lightning.fabric import wrappers
    before = wrappers._in_fabric_backward
    wrappers._in_fabric_backward = True
    try:
        yield
    finally:
        wrappers._in_fabric_backward = before


def setup_trained(fabric: Any, module: Any, optimizer: Any) -> tuple[Any, Any]:
    """The one set-up of a network being trained: the memory format chosen for the device,
    ``torch.compile`` when chosen, then Fabric (device, precision, DDP)."""
    import torch

    chosen = performance_of(fabric)
    module = chosen.prepare(module.to(fabric.device))
    if chosen.compile:
        module = torch.compile(module)
    return fabric.setup(module, optimizer)


def fabric_for(opts: TrainOptions) -> Any:
    """A launched Fabric for these options (the one place a training task gets its devices), with
    the memory format and precision chosen for its device (``engine.performance``)."""
    opts.check_training()
    return make_fabric(
        opts.accelerator,
        opts.devices,
        opts.num_nodes,
        opts.precision,
        channels_last=opts.channels_last,
        compile_module=opts.compile,
        cpu_defaults=type(opts).cpu_defaults,
        find_unused_parameters=opts.parameters_may_go_unused(),
    )
