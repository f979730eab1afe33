"""Prepared windows as ``mne.EpochsArray``: look at what the model sees with MNE's plots and tools.

:func:`to_epochs` turns the windows of a window cache (one epoch per (subject, trial, window) row of
:meth:`WindowCache.windows`, in table order) into an ``mne.EpochsArray``: channels of the chosen modalities
with their names and MNE types (EEG as ``eeg``; a peripheral channel as its kind where MNE has that type —
``gsr``, ``ecg``, ``resp``… — else ``bio``), the prepared rate, ``tmin = 0``, and the window table as
``epochs.metadata`` (subject id and index, trial, stimulus, window, start second, every rating and label
column) so that ``epochs["label_arousal == 1"]`` or ``epochs[epochs.metadata.subject == "s01"]`` work.

Values are the *prepared* signals — baseline-removed and, for EEG, z-scored per time point (method-spec
§2) — not volts: plot with ``scalings="auto"`` (or e.g. ``dict(eeg=3)``), not MNE's µV defaults.

MNE keeps metadata as a pandas ``DataFrame`` (pandas is a dependency for this). Should pandas be missing
(a trimmed install), ``metadata=True`` raises an ``ImportError`` that says so, and ``metadata=False`` gives
the epochs without it (:func:`window_metadata` returns the same columns as plain NumPy arrays).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

# MNE channel types a peripheral modality may map to by its name/kind (others: "bio")
_MNE_TYPES = {"gsr", "ecg", "resp", "eog", "emg", "bio", "misc", "temperature"}


def _cache_of(source: Any) -> Any:
    from physiosync.data.cache import WindowCache, open_cache

    if isinstance(source, WindowCache):
        return source
    if hasattr(source, "cache") and isinstance(source.cache, WindowCache):  # PreparedData, Predictions
        return source.cache
    if isinstance(source, (str, Path)):
        return open_cache(source)
    raise TypeError(f"to_epochs takes a WindowCache, prepared data or a cache directory, not {type(source).__name__}")


def window_metadata(cache: Any, window_s: float, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The window table of ``cache`` at ``window_s`` as columns (what :func:`to_epochs` puts in metadata).

    Shape: every column (n_rows,), rows in table order (or ``rows`` order).
    """
    table = cache.windows(window_s)
    idx = np.arange(len(table)) if rows is None else np.asarray(rows)
    cols: dict[str, np.ndarray] = {"subject": np.asarray(cache.subjects, dtype=object)[table.subject[idx]]}
    for name, col in table.columns().items():  # ids, ratings, label_<task> (the table's CSV names)
        cols["subject_index" if name == "subject" else name] = col[idx]
    cols["start_s"] = table.window[idx] * float(window_s)
    return cols


def _channel_type(spec: Any) -> str:
    if spec.role == "eeg":
        return "eeg"
    return spec.name if spec.name in _MNE_TYPES else "bio"


def to_epochs(
    source: Any,
    window_s: float,
    modality: str | list[str] | None = None,
    rows: np.ndarray | None = None,
    metadata: bool = True,
    verbose: str | bool | None = "error",
) -> Any:
    """The prepared windows of ``source`` as an ``mne.EpochsArray`` (module docstring).

    Args:
        source: A :class:`~physiosync.data.cache.WindowCache`, anything with a ``.cache`` (``prepare``'s
            :class:`~physiosync.experiments.pipeline.PreparedData`, ``predict``'s result) or a cache directory.
        window_s: Window length in seconds (one the cache tiles: e.g. 1 or 5 for DEAP).
        modality: A modality name, a list of them, or None = every modality (channels concatenated).
        rows: Row indices (or a boolean mask) of the window table to include; default all. Full DEAP at 1 s
            is 76 800 windows × 32 channels: select what you need (MNE holds float64 in memory).
        metadata: Attach the window table as ``epochs.metadata`` (needs pandas).

    Shape:
        ``epochs.get_data()``: (n_rows, n_channels, window_s * sfreq) float64, equal to the cache's float32
        windows (``WindowCache.get_windows``) converted exactly.

    Raises:
        ImportError: ``metadata=True`` without pandas (the message says what to do).
        KeyError: an unknown modality.
    """
    import mne

    cache = _cache_of(source)
    if metadata:
        try:
            pd = importlib.import_module("pandas")
        except ImportError:
            raise ImportError("physiosync.to_epochs(metadata=True) needs pandas for MNE's epochs.metadata (pip "
                              "install pandas), or call it with metadata=False; physiosync.data.epochs."
                              "window_metadata gives the same columns as NumPy arrays") from None
    mods = [m.name for m in cache.contract.modalities] if modality is None else (
        [modality] if isinstance(modality, str) else list(modality))
    specs = [cache.contract.modality(m) for m in mods]
    table = cache.windows(window_s)
    idx = np.arange(len(table)) if rows is None else np.asarray(rows)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    sub, tri, win = table.subject[idx], table.trial[idx], table.window[idx]
    parts = [cache.get_windows(s.name, window_s, sub, tri, win) for s in specs]  # each (n, C_m, T) float32
    data = np.concatenate(parts, axis=1).astype(np.float64)
    names = [c for s in specs for c in s.ch_names]
    types = [_channel_type(s) for s in specs for _ in s.ch_names]
    info = mne.create_info(names, sfreq=float(cache.sfreq), ch_types=types, verbose=verbose)
    n_times = data.shape[2]
    events = np.stack([np.arange(len(idx)) * n_times, np.zeros(len(idx), int), np.ones(len(idx), int)], axis=1)
    meta = None
    if metadata:
        meta = pd.DataFrame(window_metadata(cache, window_s, idx))
    return mne.EpochsArray(data, info, events=events.astype(np.int64), tmin=0.0, event_id={"window": 1},
                           metadata=meta, verbose=verbose)


__all__ = ["to_epochs", "window_metadata"]
