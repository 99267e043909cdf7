"""How the networks run on a device: memory format, precision and ``torch.compile``, chosen once
per run (and per inference call) by what was measured to be faster there.

The rule (``benchmarks/cpu_speed.py`` measured it; BENCHMARKS.md has the numbers):

- **CUDA**: channels_last (tensor cores want NHWC) and ``bf16-mixed``.
- **CPU**: channels_last where the task's networks run faster that way (oneDNN's NHWC kernels),
  and ``bf16-mixed`` where the CPU computes bf16 natively (AVX-512 BF16 or AMX) *and* the task's
  accuracy was measured to hold in bf16; each task declares both on its options class
  (:class:`CpuDefaults`). Elsewhere 32-bit: emulated bf16 is slower than fp32.
- **MPS**: 32-bit and contiguous (nothing measured there).

The user's ``--precision`` and ``--channels-last/--no-channels-last`` override the rule; the run
says what it chose at its start and records it in ``run.json`` (``performance``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from transferlab.engine.memory import keep_freed_memory
from transferlab.engine.options import CpuDefaults


@functools.cache
def native_bf16() -> str:
    """The CPU's native bf16 instructions ('AMX', 'AVX-512 BF16'), or '' where it has none."""
    import torch

    probes = (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported"))
    for name, probe in probes:
        check = getattr(torch.cpu, probe, None)
        if check is not None:
            with contextlib.suppress(Exception):
                if check():
                    return name
    return _native_bf16_from_cpuinfo()


def _native_bf16_from_cpuinfo() -> str:
    """A fallback for torch builds without the probes: the Linux CPU flags."""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return ""
    if "amx_bf16" in flags:
        return "AMX"
    return "AVX-512 BF16" if "avx512_bf16" in flags else ""


@dataclass(frozen=True)
class Performance:
    """The chosen way to run networks on one device type."""

    device: str  # "cpu", "cuda", "mps"
    precision: str  # a Fabric precision name
    channels_last: bool
    compile: bool = False
    why: str = ""

    @property
    def bf16(self) -> bool:
        return self.precision.startswith("bf16")

    def describe(self) -> str:
        layout = "channels_last" if self.channels_last else "contiguous"
        compiled = ", torch.compile" if self.compile else ""
        return f"{self.device}: {self.precision}, {layout}{compiled}" + (f" ({self.why})" if self.why else "")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def prepare(self, module: Any) -> Any:
        """The module in the chosen memory format (in place, as ``Module.to`` is)."""
        import torch

        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def inputs(self, x: Any) -> Any:
        """An image batch in the chosen memory format (other tensors as they are)."""
        import torch

        if self.channels_last and getattr(x, "ndim", 0) == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for code outside Fabric's modules (evaluation, frozen feature networks)."""
        import torch

        if self.precision != "bf16-mixed" or self.device not in ("cpu", "cuda"):
            return contextlib.nullcontext()
        return torch.autocast(self.device, dtype=torch.bfloat16)

    @contextlib.contextmanager
    def inference(self, module: Any) -> Iterator[Any]:
        """``module`` in eval mode, the chosen format, no autograd and autocast; its training
        mode is restored afterwards. Yields the module."""
        import torch

        keep_freed_memory()  # each batch's tensors reuse the last batch's memory (engine/memory.py)
        was_training = module.training
        module.eval()
        self.prepare(unwrap(module))  # Fabric's wrapper refuses .to(); the module inside takes it
        try:
            with torch.inference_mode(), self.autocast():
                yield module
        finally:
            module.train(was_training)


def device_type(accelerator: str) -> str:
    """The torch device type that Fabric's ``accelerator`` (or a device name) will give."""
    import torch

    name = str(accelerator).split(":")[0]
    if name in ("gpu", "cuda"):
        return "cuda"
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    return name


def choose(
    device: str,
    defaults: CpuDefaults | None = None,
    *,
    precision: str | None = None,
    channels_last: bool | None = None,
    compile: bool = False,
) -> Performance:
    """The rule in the module docstring; ``precision``/``channels_last`` given by the user win."""
    defaults = defaults or CpuDefaults()
    reasons = []
    if device == "cuda":
        auto_precision, auto_layout = ("bf16-mixed" if defaults.gpu_bf16 else "32-true"), True
        if precision is None and not defaults.gpu_bf16:
            reasons.append(f"32-bit: {defaults.why}")
    elif device == "cpu":
        auto_layout = defaults.channels_last
        native = native_bf16()
        auto_precision = "bf16-mixed" if defaults.bf16 and native else "32-true"
        if precision is None:
            if not defaults.bf16:
                reasons.append(f"32-bit: {defaults.why or 'bf16 did not hold accuracy for this task'}")
            elif native:
                reasons.append(f"native bf16: {native}")
            else:
                reasons.append("32-bit: this CPU has no native bf16 (AVX-512 BF16 or AMX)")
    else:
        auto_precision, auto_layout = "32-true", False
    if precision is not None:
        reasons.append("precision as asked")
    if channels_last is not None and channels_last != auto_layout:
        reasons.append("memory format as asked")
    return Performance(
        device=device,
        precision=precision or auto_precision,
        channels_last=auto_layout if channels_last is None else bool(channels_last),
        compile=bool(compile),
        why="; ".join(reasons),
    )


def for_inference(device: Any, defaults: CpuDefaults | None = None) -> Performance:
    """The choice for inference on ``device`` (a torch.device or name): the training rule."""
    return choose(getattr(device, "type", None) or device_type(str(device)), defaults)


def performance_of(fabric: Any) -> Performance:
    """The choice a Fabric was made with (:func:`engine.fabric.make_fabric`), or the rule for its
    device when the Fabric was made elsewhere."""
    chosen = getattr(fabric, "transferlab_performance", None)
    return chosen if chosen is not None else for_inference(fabric.device)


def unwrap(module: Any) -> Any:
    """The user's module inside Fabric's and torch.compile's wrappers (for state dicts, EMA)."""
    module = getattr(module, "module", module)
    return getattr(module, "_orig_mod", module)
