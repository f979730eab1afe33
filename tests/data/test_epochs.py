"""`physiosync.to_epochs`: prepared windows as mne.EpochsArray, with the window table as metadata."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from builders import make_cache

from physiosync.data.epochs import to_epochs, window_metadata


def test_epochs_hold_the_prepared_windows_with_names_types_and_rate(tmp_path: Path) -> None:
    cache = make_cache(tmp_path, n_subjects=2, n_trials=3, seconds=10)
    ep = to_epochs(cache, 1.0, metadata=False)
    table = cache.windows(1.0)
    assert len(ep) == len(table) == 2 * 3 * 10
    assert ep.ch_names == ["E0", "E1", "E2", "E3", "GSR"] and ep.get_channel_types() == ["eeg"] * 4 + ["gsr"]
    assert ep.info["sfreq"] == 128.0 and ep.tmin == 0.0 and ep.get_data().shape == (60, 5, 128)
    eeg = cache.get_windows("eeg", 1.0, table.subject, table.trial, table.window)
    gsr = cache.get_windows("gsr", 1.0, table.subject, table.trial, table.window)
    # float32 -> float64 is exact: the epochs are the cache's windows, unchanged
    assert np.array_equal(ep.get_data(), np.concatenate([eeg, gsr], axis=1).astype(np.float64))
    # one modality, a subset of rows (5 s windows): the same windows, in the given order
    rows = np.array([7, 0, 3])
    t5 = cache.windows(5.0)
    ep5 = to_epochs(cache, 5.0, modality="eeg", rows=rows, metadata=False)
    assert ep5.ch_names == ["E0", "E1", "E2", "E3"] and ep5.get_data().shape == (3, 4, 640)
    assert np.array_equal(ep5.get_data(), cache.get_windows("eeg", 5.0, t5.subject[rows], t5.trial[rows],
                                                            t5.window[rows]))
    with pytest.raises(KeyError, match="no modality 'ecg'"):
        to_epochs(cache, 1.0, modality="ecg", metadata=False)


def test_metadata_is_the_window_table(tmp_path: Path) -> None:
    import pandas as pd

    cache = make_cache(tmp_path, n_subjects=2, n_trials=3, seconds=10)
    ep = to_epochs(cache, 5.0, rows=np.arange(4))
    meta = ep.metadata
    assert isinstance(meta, pd.DataFrame) and len(meta) == 4
    table = cache.windows(5.0)
    assert list(meta["subject"]) == ["s01"] * 4 and list(meta["window"]) == [0, 1, 0, 1]
    assert list(meta["trial"]) == [0, 0, 1, 1] and list(meta["start_s"]) == [0.0, 5.0, 0.0, 5.0]
    assert np.array_equal(meta["label_four"].to_numpy(), table.label("four")[:4])
    # MNE's metadata queries select the same windows as the table does
    high = ep["label_arousal == 1"]
    assert len(high) == int((table.label("arousal")[:4] == 1).sum())
    cols = window_metadata(cache, 5.0)
    assert set(cols) >= {"subject", "subject_index", "trial", "stimulus", "window", "start_s", "valence",
                         "arousal", "label_arousal", "label_valence", "label_four"}
    assert all(len(v) == len(table) for v in cols.values())


def test_metadata_without_pandas_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed (import raises ImportError)
    cache = make_cache(tmp_path, n_subjects=1, n_trials=1, seconds=5)
    with pytest.raises(ImportError, match="needs pandas.*metadata=False"):
        to_epochs(cache, 1.0)
    assert len(to_epochs(cache, 1.0, metadata=False)) == 5


def test_to_epochs_is_public_and_opens_a_cache_directory(tmp_path: Path) -> None:
    import physiosync

    cache = make_cache(tmp_path, n_subjects=1, n_trials=2, seconds=5)
    ep = physiosync.to_epochs(cache.path, 5.0, metadata=False)
    assert len(ep) == 2
    with pytest.raises(TypeError, match="WindowCache"):
        to_epochs(3, 1.0)
