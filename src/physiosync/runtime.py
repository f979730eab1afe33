"""Device selection, thread count and seeding — one place, so every stage is device-agnostic and
deterministic for a seed (method-spec D16, D18)."""

from __future__ import annotations

import os
import random

import numpy as np


def resolve_device(name: str = "auto") -> "torch.device":  # noqa: F821
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
