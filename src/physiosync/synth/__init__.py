"""Synthetic DEAP (``sNN.dat``/``sNN.mat``), DREAMER (``DREAMER.mat``) and own-recordings (EDF/BDF/FIF/
BrainVision/EEGLAB + trials table + dataset file) datasets in the real file formats, with stimulus-locked
inter-subject and cross-modal synchronisation and tunable label effects.

Every registered dataset has a synthetic twin here (``SYNTHETIC``): adding a dataset = a reader + a facts
file + a writer registered below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from physiosync.errors import ConfigError
from physiosync.synth.deap import write_synthetic_deap
from physiosync.synth.dreamer import write_synthetic_dreamer
from physiosync.synth.recordings import write_synthetic_recordings

# dataset -> ((subjects, trials) small default for tests and demos, the real dataset's size)
SYNTHETIC: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "deap": ((6, 8), (32, 40)),
    "dreamer": ((6, 18), (23, 18)),
    "recordings": ((4, 8), (32, 40)),
}
# dataset -> file formats its writer takes (the first is the default)
FORMATS: dict[str, tuple[str, ...]] = {
    "deap": ("python", "matlab"),
    "dreamer": (),
    "recordings": ("edf", "bdf", "fif", "brainvision", "eeglab"),
}


def write_synthetic(
    dataset: str, out: str | Path, n_subjects: int, n_trials: int, seed: int = 0, effect: float = 1.0,
    format: str | None = None, clip_seconds: tuple[float, float] = (65.0, 80.0), **recording_options: Any,
) -> str:
    """Write the synthetic twin of ``dataset`` to ``out``; returns one line saying what was written.

    ``format`` applies to DEAP (``python`` pickles or ``matlab``) and to recordings (EDF, BDF, FIF, BrainVision,
    EEGLAB); ``clip_seconds`` to DREAMER; ``recording_options`` go to :func:`write_synthetic_recordings` (and are
    ignored by the other writers, so one caller can pass them for every dataset).

    Raises:
        ConfigError: a format the dataset's writer does not take (naming the dataset that takes it).
    """
    if dataset not in SYNTHETIC:
        raise ConfigError(f"no synthetic writer for {dataset!r}; available: {', '.join(SYNTHETIC)}")
    if format is not None and format not in FORMATS[dataset]:
        owner = next((d for d, fmts in FORMATS.items() if format in fmts), None)
        takes = ", ".join(FORMATS[dataset]) or "no --format"
        raise ConfigError(f"--format {format} is for {owner!r}; {dataset} takes {takes}")
    fmt = format or (FORMATS[dataset][0] if FORMATS[dataset] else None)
    if dataset == "deap":
        paths = write_synthetic_deap(out, n_subjects=n_subjects, n_trials=n_trials, seed=seed, effect=effect,
                                     format=fmt)
        return f"wrote {len(paths)} DEAP subject files ({n_trials} trials each, format {fmt}) to {out}"
    if dataset == "dreamer":
        path = write_synthetic_dreamer(out, n_subjects=n_subjects, n_trials=n_trials, seed=seed, effect=effect,
                                       clip_seconds=clip_seconds)
        return f"wrote {path} ({n_subjects} subjects x {n_trials} clips of {clip_seconds[0]:g}-{clip_seconds[1]:g} s)"
    written = write_synthetic_recordings(out, format=fmt, n_subjects=n_subjects, n_trials=n_trials, seed=seed,
                                         effect=effect, **recording_options)
    peripheral = recording_options.get("peripheral", "gsr")
    return (f"wrote {len(written.files)} {fmt} recordings ({n_subjects} subjects x {n_trials} trials, peripheral "
            f"{peripheral}), {written.table.name} and {written.dataset_file.name} to {out}")


__all__ = ["FORMATS", "SYNTHETIC", "write_synthetic", "write_synthetic_deap", "write_synthetic_dreamer",
           "write_synthetic_recordings"]
