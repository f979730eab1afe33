"""The per-window metadata table that drives folds, samplers, baselines and reports.

One row per (subject, trial, window) of one window length. Columns are plain numpy arrays of equal
length (no pandas dependency). Row order is subject-major, then trial, then window, so for a cache with
S subjects, K trials and W windows per trial, row ``(s * K + t) * W + w`` is subject s, trial t, window w.

Which ratings and label tasks a table carries is decided by the cache it comes from (the dataset facts and
the config's ``tasks``), so the rating and label columns are mappings rather than fixed attributes.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_ID_COLUMNS = ("subject", "trial", "stimulus", "window")


@dataclass(frozen=True)
class WindowTable:
    """Columns, each Shape: (n_rows,).

    Attributes:
        subject: Index into the cache's subject list.
        trial: Trial index within the subject (trial order = stimulus order for DEAP/DREAMER).
        stimulus: Stimulus id shared across subjects (same video/clip => same id).
        window: Window index within the trial at this table's window length.
        window_s: The window length this table describes (seconds).
        n_windows: Windows per trial at this length.
        ratings: Rating name ("valence", "arousal", "dominance", ...) -> raw ratings, float64.
        labels: Task name ("arousal", "four", "liking", ...) -> integer class labels, int64.
    """

    subject: np.ndarray
    trial: np.ndarray
    stimulus: np.ndarray
    window: np.ndarray
    window_s: float
    n_windows: int
    ratings: Mapping[str, np.ndarray] = field(default_factory=dict)
    labels: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.subject)
        for name, col in self.columns().items():
            if len(col) != n:
                raise ValueError(f"WindowTable column {name!r} has {len(col)} rows, expected {n}")

    def columns(self) -> dict[str, np.ndarray]:
        """Every column by its CSV name: ids, ratings, then ``label_<task>``."""
        cols = {name: getattr(self, name) for name in _ID_COLUMNS}
        cols.update(self.ratings)
        cols.update({f"label_{name}": y for name, y in self.labels.items()})
        return cols

    def __len__(self) -> int:
        return len(self.subject)

    @property
    def moment(self) -> np.ndarray:
        """Stimulus-moment id ``trial * n_windows + window`` (same moment = same stimulus time for all)."""
        return self.trial * self.n_windows + self.window

    def label(self, name: str) -> np.ndarray:
        """Integer labels of the task ``name`` (e.g. ``arousal``, ``four``, ``liking``)."""
        try:
            return self.labels[name]
        except KeyError:
            raise KeyError(f"unknown label {name!r}; expected one of {sorted(self.labels)}") from None

    def select(self, idx: np.ndarray) -> WindowTable:
        """Rows by boolean mask or integer indices (order preserved)."""
        return WindowTable(
            **{name: getattr(self, name)[idx] for name in _ID_COLUMNS},
            window_s=self.window_s, n_windows=self.n_windows,
            ratings={k: v[idx] for k, v in self.ratings.items()},
            labels={k: v[idx] for k, v in self.labels.items()},
        )

    def to_csv(self, path: str | Path) -> None:
        cols = self.columns()
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(list(cols))
            w.writerows(zip(*(c.tolist() for c in cols.values()), strict=True))

    @classmethod
    def from_trials(
        cls,
        stimulus: np.ndarray,
        ratings: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
        n_windows: int,
        window_s: float,
    ) -> WindowTable:
        """Expand per-trial arrays (each Shape: (n_subjects, n_trials)) to one row per window, vectorised.

        Args:
            stimulus: Stimulus ids.
            ratings: Rating name -> ratings.
            labels: Task name -> integer labels.
            n_windows: Windows per trial at ``window_s``.
            window_s: Window length (seconds).
        """
        n_sub, n_tr = stimulus.shape
        subj, trial, win = np.meshgrid(np.arange(n_sub), np.arange(n_tr), np.arange(n_windows), indexing="ij")

        def rep(a: np.ndarray) -> np.ndarray:
            return np.repeat(np.asarray(a).reshape(-1), n_windows)

        return cls(
            subject=subj.reshape(-1).astype(np.int64),
            trial=trial.reshape(-1).astype(np.int64),
            stimulus=rep(stimulus).astype(np.int64),
            window=win.reshape(-1).astype(np.int64),
            window_s=float(window_s),
            n_windows=int(n_windows),
            ratings={k: rep(v).astype(np.float64) for k, v in ratings.items()},
            labels={k: rep(v).astype(np.int64) for k, v in labels.items()},
        )
