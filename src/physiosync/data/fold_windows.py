"""The same folds at another window length: one set of folds for rows that fine-tune on different windows.

Folds (:mod:`physiosync.data.protocols`) are row indices into the fine-tuning table of one window length.
``compare`` draws them once, on the longest windows, and every row must be tested on exactly those trials,
subjects and seconds of signal — including a row that fine-tunes on the short windows only
(``short-only``). Contract 2 makes the translation exact: the samples of 5 s window ``w`` are the 1 s
windows ``5w .. 5w+4`` of the same trial, so a long-window row maps to a fixed block of short-window rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from physiosync.data.protocols import Fold
from physiosync.data.table import WindowTable
from physiosync.errors import ConfigError


def expand_fold_rows(rows: np.ndarray, long_table: WindowTable, short_table: WindowTable) -> np.ndarray:
    """Rows of ``short_table`` lying inside the given ``long_table`` rows (same subject, trial, seconds).

    Shape: rows (n,) -> (n * r,) sorted, r = long window / short window.

    Raises:
        ConfigError: the long window is not a whole number of short windows.
    """
    r = int(round(long_table.window_s / short_table.window_s))
    if abs(r * short_table.window_s - long_table.window_s) > 1e-9:
        raise ConfigError(f"window {long_table.window_s} s is not a whole number of {short_table.window_s} s windows")
    rows = np.asarray(rows, dtype=np.int64)
    n_trials = int(long_table.trial.max()) + 1 if len(long_table) else 0
    base = (long_table.subject[rows] * n_trials + long_table.trial[rows]) * short_table.n_windows
    out = (base[:, None] + long_table.window[rows][:, None] * r + np.arange(r)[None, :]).reshape(-1)
    return np.sort(out)


def folds_at_window(folds: list[Fold], table: WindowTable, to_table: WindowTable,
                    resolutions: tuple[float, ...]) -> list[Fold]:
    """``folds`` (rows of ``table``) as folds of ``to_table``, keeping the pre-training splits of ``resolutions``.

    The same trials and seconds: at the same window length the rows are unchanged, at a shorter one they
    are :func:`expand_fold_rows`. Subjects, fold indices and pre-training splits are those of ``folds``.
    """
    same = to_table.window_s == table.window_s

    def rows(a: np.ndarray) -> np.ndarray:
        return np.asarray(a) if same else expand_fold_rows(a, table, to_table)

    return [Fold(index=f.index, protocol=f.protocol, leaky=f.leaky, train=rows(f.train), val=rows(f.val),
                 test=rows(f.test), subject=f.subject, pretrain={w: f.pretrain[w] for w in resolutions},
                 train_subjects=f.train_subjects, test_subjects=f.test_subjects) for f in folds]


def same_folds(a: list[Any], b: list[Any]) -> bool:
    """Equal fold indices, train/val/test rows and pre-training split keys, fold by fold."""
    return len(a) == len(b) and all(
        x.index == y.index and all(np.array_equal(getattr(x, p), getattr(y, p)) for p in ("train", "val", "test"))
        and x.pretrain_keys() == y.pretrain_keys() for x, y in zip(a, b, strict=True)
    )
