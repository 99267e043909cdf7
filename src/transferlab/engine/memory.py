"""The C heap of a process that trains or runs networks: freed tensor memory stays in the process
instead of going back to the OS, so the next step's (or batch's) tensors of the same sizes reuse it
without page faults.

Why by hand: glibc's malloc gives every block above its mmap threshold (at most 32 MiB) its own
mapping and unmaps it on free, and trims the heap's top past its trim threshold. A training step
frees and allocates the same activations every step, so each step faults all of them in again,
zeroed page by page: about 50,000 minor faults a step for Lite0 at 64 px, batch 64; at 224 px,
batch 32, a fine-tune took twice as long (BENCHMARKS.md, "classify on the shared EpochRecipe").
jemalloc or tcmalloc fix it too, but only preloaded before the process starts; ``mallopt`` changes
glibc's own policy at run time. Other C libraries (musl, macOS, Windows) are left alone.

The cost: the process's resident memory stays at its peak until it ends, as with PyTorch's own
CUDA caching allocator.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools

# glibc's malloc.h
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_NO_TRIM = 2**31 - 1  # mallopt takes an int: trim only a free top of 2 GiB


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(name)
        if hasattr(libc, "gnu_get_libc_version") and hasattr(libc, "mallopt"):
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            return libc
    return None


@functools.cache
def keep_freed_memory() -> bool:
    """From now on in this process: no block gets its own mapping and the heap is never trimmed.
    Called by every training run (``engine.run``) and every inference (``Performance.inference``);
    once is enough. Returns whether the policy applies here (glibc)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _NO_TRIM))
