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


# --------------------------------------------------------------------------------------------------
# precision

PRECISIONS = ("auto", "fp32", "bf16")


def cpu_bf16_features() -> dict[str, object]:
    """What this CPU offers for bfloat16 matrix multiplies, as far as torch and the kernel tell.

    ``capability`` is the vector ISA torch's CPU kernels were dispatched to (``torch.backends.cpu``), the
    flags come from ``/proc/cpuinfo`` (Linux; empty elsewhere) and ``mkldnn_bf16`` says whether oneDNN
    will run bf16 GEMMs at all. Kept separate from the decision so tests can feed it any machine.
    """
    import torch

    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        capability = "unknown"
    try:
        mkldnn = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        mkldnn = False
    return {"capability": capability, "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "mkldnn_bf16": mkldnn}


def cpu_bf16_is_fast(features: dict[str, object]) -> bool:
    """True when bf16 GEMMs run in hardware (AMX or AVX512-BF16) and oneDNN will use them.

    Why these two flags: only with native bf16 dot products (AMX tiles, ``vdpbf16ps``) is a bf16 GEMM
    2-7x faster than fp32 (measured 2048³: Xeon AMX ~7x, EPYC Zen 5 AVX512-BF16 ~4x); on CPUs without
    them oneDNN emulates bf16 through fp32 and training only gets slower, so ``auto`` keeps fp32 there.
    """
    hardware = bool(features.get("amx_bf16")) or bool(features.get("avx512_bf16"))
    return hardware and bool(features.get("mkldnn_bf16"))


def bf16_is_fast(device: torch.device) -> bool:  # noqa: F821
    """Whether ``auto`` precision should train in bf16 on ``device`` (CPU flags, CUDA bf16; MPS etc.: no)."""
    import torch

    if device.type == "cpu":
        return cpu_bf16_is_fast(cpu_bf16_features())
    if device.type == "cuda":
        try:
            return bool(torch.cuda.is_bf16_supported())
        except (AssertionError, RuntimeError):  # no usable CUDA runtime
            return False
    return False


def resolve_precision(requested: str, device: torch.device) -> str:  # noqa: F821
    """``auto`` → ``bf16`` where :func:`bf16_is_fast` says so, else ``fp32``; explicit values pass through.

    The resolved value (never ``auto``) is what a run saves and reports, so its numbers always say which
    arithmetic produced them.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"precision: found {requested!r}, expected one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    return "bf16" if bf16_is_fast(device) else "fp32"
