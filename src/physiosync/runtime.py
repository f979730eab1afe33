"""Device selection, thread count and seeding — one place, so every stage is device-agnostic and
deterministic for a seed (method-spec D16, D18)."""

from __future__ import annotations

import os
import random

import numpy as np


def resolve_device(name: str = "auto") -> torch.device:  # noqa: F821
    """``auto`` picks CUDA when present, then Apple MPS, else CPU; anything else is passed to torch."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one integer."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def set_threads(n: int | None) -> int:
    """Set torch intra-op threads (None = leave torch's default); return the count in force."""
    import torch

    if n is not None:
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def keep_freed_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of returning it to the OS (Linux/glibc only).

    Why: the largest per-step tensors of the PhysioSync models (e.g. the 33.5 MB gradient of a projector's
    last layer, the 210 MB gradient of the DEAP 5 s EEG embedding) exceed glibc's mmap threshold, so every
    training step would map them afresh and page-fault/zero them again (measured: the pre-training
    backward pass ~2x slower). Disabling mmap allocations and heap trimming lets the allocator reuse them;
    the process keeps its peak RSS. Returns False (and changes nothing) where glibc is not available.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h> parameter numbers
        ok = libc.mallopt(m_mmap_max, 0) == 1
        return bool(ok and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1)
    except (OSError, AttributeError):
        return False


def tune_cpu_runtime() -> dict[str, bool]:
    """CPU settings for training: reuse freed memory (see :func:`keep_freed_memory`) and flush denormals.

    Why flush denormals: tiny gradients and Adam moments drift into the float32 denormal range, where x86
    arithmetic is many times slower; flushing them to zero measured ~10 % faster pre-training steps at
    the paper's sizes on our 2-core CPU, and changes results only below 1e-38.
    """
    import torch

    return {"keep_freed_memory": keep_freed_memory(), "flush_denormal": bool(torch.set_flush_denormal(True))}
