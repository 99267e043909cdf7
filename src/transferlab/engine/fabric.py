"""Lightning Fabric set-up: devices, nodes, precision, and the defaults that fit each device."""

from __future__ import annotations

from typing import Any

from transferlab.errors import UsageError

PRECISIONS = ("32", "32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64")


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
) -> Any:
    """A launched Fabric. ``precision=None`` means bf16-mixed on a GPU and 32-bit on the CPU."""
    import torch

    Fabric = fabric_class()
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    precision = precision or ("bf16-mixed" if on_gpu else "32-true")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}'", f"use one of: {', '.join(PRECISIONS)}")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise UsageError(
            "--accelerator gpu was asked for but no CUDA GPU is available", "use --accelerator cpu (or auto)"
        )
    if strategy == "auto" and devices not in ("auto", 1, "1"):
        strategy = "ddp"
    fabric = Fabric(
        accelerator=accelerator, devices=devices, num_nodes=num_nodes, precision=precision, strategy=strategy
    )
    fabric.launch()
    return fabric


def unwrap(module: Any) -> Any:
    """The user's module inside Fabric's and torch.compile's wrappers (for state dicts, EMA)."""
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)


def setup_trained(fabric: Any, module: Any, optimizer: Any, compile_module: bool = False) -> tuple[Any, Any]:
    """The one set-up of a network being trained: channels_last on a GPU (tensor cores want NHWC;
    it is slower on CPUs), ``torch.compile`` when asked, then Fabric (device, precision, DDP)."""
    import torch

    if fabric.device.type == "cuda":
        module = module.to(fabric.device, memory_format=torch.channels_last)
    if compile_module:
        module = torch.compile(module)
    return fabric.setup(module, optimizer)
