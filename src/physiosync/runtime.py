"""Device selection, thread count and seeding — one place, so every stage is device-agnostic and
deterministic for a seed (method-spec D16, D18)."""

from __future__ import annotations

import os
import random
import re
from typing import Any

import numpy as np

from physiosync.errors import ConfigError, shorten

_DEVICE_RE = re.compile(r"(auto|cpu|mps|cuda)(?::(\d{1,4}))?")


def resolve_device(name: str = "auto") -> torch.device:  # noqa: F821
    """``auto`` picks CUDA when present, then Apple MPS, else CPU; ``cpu``, ``cuda``, ``cuda:N``, ``mps``
    are checked against this machine.

    Why check here: torch accepts ``torch.device("cuda")`` on a machine without a GPU and fails only at
    the first tensor moved there, deep inside a stage, with a traceback; ``tpu0`` fails with torch's own
    parse error. Both become a one-line :class:`~physiosync.errors.ConfigError` before any work starts.
    """
    import torch

    m = _DEVICE_RE.fullmatch(str(name))
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise ConfigError(f"device {shorten(repr(name), 60)}: unknown device; expected auto, cpu, cuda, cuda:N or mps")
    kind, index = m.group(1), m.group(2)
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available(torch):
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} (--device / config key device): no CUDA device is available on "
                              "this machine; use --device cpu (or auto)")
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise ConfigError(f"device {name!r} (--device / config key device): this machine has {count} CUDA "
                              f"device(s), cuda:0..cuda:{count - 1}")
    if kind == "mps" and not _mps_available(torch):
        raise ConfigError(f"device {name!r} (--device / config key device): Apple MPS is not available on this "
                          "machine; use --device cpu (or auto)")
    return torch.device(name)


def _mps_available(torch: Any) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


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
