"""The per-window metadata table that drives folds, samplers, baselines and reports.

One row per (subject, trial, window) of one window length. Columns are plain numpy arrays of equal
length (no pandas dependency). Row order is subject-major, then trial, then window, so for a cache with
S subjects, K trials and W windows per trial, row ``(s * K + t) * W + w`` is subject s, trial t, window w.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

LABEL_COLUMNS = {"arousal": "label_arousal", "valence": "label_valence", "four": "label_four"}
N_CLASSES = {"arousal": 2, "valence": 2, "four": 4}


@dataclass(frozen=True)
class WindowTable:
    """Columns, each Shape: (n_rows,).

    Attributes:
        subject: Index into the cache's subject list.
        trial: Trial index within the subject (trial order = stimulus order for DEAP/DREAMER).
        stimulus: Stimulus id shared across subjects (same video/clip => same id).
        window: Window index within the trial at this table's window length.
        valence, arousal: Raw ratings.
        label_arousal, label_valence, label_four: Integer class labels.
        window_s: The window length this table describes (seconds).
        n_windows: Windows per trial at this length.
    """

    subject: np.ndarray
    trial: np.ndarray
    stimulus: np.ndarray
    window: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    label_arousal: np.ndarray
    label_valence: np.ndarray
    label_four: np.ndarray
    window_s: float
    n_windows: int

    def __post_init__(self) -> None:
        n = len(self.subject)
        for f in self._column_names():
            if len(getattr(self, f)) != n:
                raise ValueError(f"WindowTable column {f!r} has {len(getattr(self, f))} rows, expected {n}")

    @classmethod
    def _column_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in ("window_s", "n_windows")]

    def __len__(self) -> int:
        return len(self.subject)

    @property
    def moment(self) -> np.ndarray:
        """Stimulus-moment id ``trial * n_windows + window`` (same moment = same stimulus time for all)."""
        return self.trial * self.n_windows + self.window

    def label(self, name: str) -> np.ndarray:
        """Integer labels for ``arousal``, ``valence`` or ``four``."""
        try:
            return getattr(self, LABEL_COLUMNS[name])
        except KeyError:
            raise KeyError(f"unknown label {name!r}; expected one of {sorted(LABEL_COLUMNS)}") from None

    def select(self, idx: np.ndarray) -> WindowTable:
        """Rows by boolean mask or integer indices (order preserved)."""
        cols = {f: getattr(self, f)[idx] for f in self._column_names()}
        return WindowTable(**cols, window_s=self.window_s, n_windows=self.n_windows)

    def to_csv(self, path: str | Path) -> None:
        names = self._column_names()
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(names)
            w.writerows(zip(*(getattr(self, n).tolist() for n in names), strict=True))

    @classmethod
    def from_trials(
        cls,
        stimulus: np.ndarray,
        valence: np.ndarray,
        arousal: np.ndarray,
        label_arousal: np.ndarray,
        label_valence: np.ndarray,
        label_four: np.ndarray,
        n_windows: int,
        window_s: float,
    ) -> WindowTable:
        """Expand per-trial arrays (Shape: (n_subjects, n_trials)) to one row per window, vectorised."""
        n_sub, n_tr = stimulus.shape
        subj, trial, win = np.meshgrid(np.arange(n_sub), np.arange(n_tr), np.arange(n_windows), indexing="ij")

        def rep(a: np.ndarray) -> np.ndarray:
            return np.repeat(np.asarray(a).reshape(-1), n_windows)

        return cls(
            subject=subj.reshape(-1).astype(np.int64),
            trial=trial.reshape(-1).astype(np.int64),
            stimulus=rep(stimulus).astype(np.int64),
            window=win.reshape(-1).astype(np.int64),
            valence=rep(valence).astype(np.float64),
            arousal=rep(arousal).astype(np.float64),
            label_arousal=rep(label_arousal).astype(np.int64),
            label_valence=rep(label_valence).astype(np.int64),
            label_four=rep(label_four).astype(np.int64),
            window_s=float(window_s),
            n_windows=int(n_windows),
        )
