"""Training checkpoints: one self-describing file per run stage, written atomically, loadable without code.

A checkpoint holds everything needed to continue a run *exactly* where it stopped: weights, optimiser and
scheduler state, the epoch/step counters, every random number generator the loop draws from (Python
``random``, NumPy ``Generator`` objects, the torch CPU and CUDA default generators, and any dedicated
``torch.Generator`` used for augmentation or sampling), plus the resolved config, the data contract, the
cache hash and the history so far — so a checkpoint can be checked against the data it is resumed on
(method-spec D16/D18). Files are written via :mod:`physiosync.atomic` (temp file + rename): a crash during
``save_checkpoint`` leaves the previous checkpoint intact and never a partial file. Loading uses torch's
``weights_only`` unpickler, because pickles are code and a checkpoint may come from elsewhere.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physiosync.atomic import atomic_path
from physiosync.errors import DataFormatError

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (the old file stays valid until the new one is complete).

    Args:
        path: Destination file (``.pt``); parent directories are created.
        state: Plain containers of tensors, numbers, strings (e.g. ``model``, ``optimizer``, ``scheduler``,
            ``epoch``, ``step``, ``rng``, ``config``, ``contract``, ``cache_hash``, ``history``).

    Returns:
        The path written.
    """
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        DataFormatError: the file is missing, truncated, or not a checkpoint of this format — the message
            names the file so a user knows which one to delete.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "checkpoint", "no such file", "a checkpoint written by physiosync")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError/EOFError/UnpicklingError depending on the damage
        raise DataFormatError(
            path, "checkpoint", f"unreadable file ({type(e).__name__}: {str(e).splitlines()[0]})",
            "a complete checkpoint (truncated or corrupted? delete it to restart this stage)",
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise DataFormatError(path, "format", found, CHECKPOINT_FORMAT)
    return state


def capture_rng_states(
    np_generators: dict[str, np.random.Generator] | None = None,
    torch_generators: dict[str, torch.Generator] | None = None,
) -> dict[str, Any]:
    """Snapshot every generator a training loop uses, as plain picklable data.

    Args:
        np_generators: Named NumPy generators (data order, group sampling).
        torch_generators: Named dedicated torch generators (augmentation noise), on any device.

    Returns:
        A dict for :func:`restore_rng_states`.
    """
    state: dict[str, Any] = {
        "python": random.getstate(),
        "torch_cpu": torch.get_rng_state(),
        "numpy": {k: g.bit_generator.state for k, g in (np_generators or {}).items()},
        "torch": {k: g.get_state() for k, g in (torch_generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_states(
    state: dict[str, Any],
    np_generators: dict[str, np.random.Generator] | None = None,
    torch_generators: dict[str, torch.Generator] | None = None,
) -> None:
    """Put every generator back to a :func:`capture_rng_states` snapshot (in place).

    Raises:
        KeyError: a generator passed here has no saved state (the loop changed between save and resume).
    """
    py = state["python"]
    # The weights-only unpickler returns the inner state as a list; random.setstate needs tuples.
    random.setstate((py[0], tuple(py[1]), py[2]))
    torch.set_rng_state(state["torch_cpu"].cpu())
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["torch_cuda"]])
    for k, g in (np_generators or {}).items():
        g.bit_generator.state = state["numpy"][k]
    for k, g in (torch_generators or {}).items():
        g.set_state(state["torch"][k].cpu())
