"""Synthetic DEAP (``sNN.dat``/``sNN.mat``) and DREAMER (``DREAMER.mat``) datasets in the real file formats,
with stimulus-locked inter-subject and cross-modal synchronisation and tunable label effects.

Every registered dataset has a synthetic twin here (``SYNTHETIC``): adding a dataset = a reader + a facts
file + a writer registered below.
"""

from __future__ import annotations

from pathlib import Path

from physiosync.synth.deap import write_synthetic_deap
from physiosync.synth.dreamer import write_synthetic_dreamer

# dataset -> ((subjects, trials) small default for tests and demos, the real dataset's size)
SYNTHETIC: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "deap": ((6, 8), (32, 40)),
    "dreamer": ((6, 18), (23, 18)),
}


def write_synthetic(
    dataset: str, out: str | Path, n_subjects: int, n_trials: int, seed: int = 0, effect: float = 1.0,
    format: str = "python", clip_seconds: tuple[float, float] = (65.0, 80.0),
) -> str:
    """Write the synthetic twin of ``dataset`` to ``out``; returns one line saying what was written.

    ``format`` applies to DEAP (``python`` pickles or ``matlab``), ``clip_seconds`` to DREAMER.
    """
    if dataset == "deap":
        paths = write_synthetic_deap(out, n_subjects=n_subjects, n_trials=n_trials, seed=seed, effect=effect,
                                     format=format)
        return f"wrote {len(paths)} DEAP subject files ({n_trials} trials each, format {format}) to {out}"
    if dataset == "dreamer":
        path = write_synthetic_dreamer(out, n_subjects=n_subjects, n_trials=n_trials, seed=seed, effect=effect,
                                       clip_seconds=clip_seconds)
        return f"wrote {path} ({n_subjects} subjects x {n_trials} clips of {clip_seconds[0]:g}-{clip_seconds[1]:g} s)"
    raise ValueError(f"no synthetic writer for {dataset!r}; available: {', '.join(SYNTHETIC)}")


__all__ = ["SYNTHETIC", "write_synthetic", "write_synthetic_deap", "write_synthetic_dreamer"]
