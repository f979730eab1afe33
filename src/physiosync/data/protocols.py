"""Fold construction for every evaluation protocol, and folds as saved artefacts (evaluation-protocols §2).

Protocols know metadata only: they read the columns of a :class:`~physiosync.data.table.WindowTable` (subject,
trial, stimulus, window) and never a signal or a label, so one set of folds serves every label dimension
and pre-training can be shared between folds. All folds are computed once per experiment by
:func:`make_folds`, saved next to the cache hash with :func:`save_folds`, and used by *both* stages, so that
nothing from a test fold, labelled or not, reaches that fold's pre-training, fine-tuning or monitoring —
except in the one protocol explicitly flagged ``leaky`` (``paper``), kept to compare with the published
numbers.

Terms:
    moment: a stimulus time point (trial, window) shared by all subjects; at a window length with
        ``n`` windows per trial its id is ``trial * n + window`` (the same id as ``WindowTable.moment``;
        the authors' moment lists are assumed to be enumerated in this trial-major order).
    fine-tuning table: the WindowTable of the longest window length (5 s on DEAP); ``Fold.train``,
        ``Fold.val`` and ``Fold.test`` are sorted row indices into it.
    pre-training split: per pre-training window length, the moments and subjects pre-training may use.

Protocol defaults (``ProtocolConfig.n_folds = None``):
    ``paper``: 10 folds over shuffled moments of the fine-tuning length.
    ``stimulus-kfold``: the largest divisor ``k`` of the number of stimuli with ``2 <= k <= 10`` that
        leaves at least 3 stimuli per fold (DEAP 40 → 10 folds of 4; DREAMER 18 → 6 folds of 3); if no
        divisor qualifies, ``min(10, n_stimuli)`` folds of near-equal size.
    ``subject-trial-kfold``: 5 trial folds (``n_folds = n_trials`` gives leave-one-trial-out), the same
        trial split for every subject.
    ``loso``: one fold per subject (``n_folds`` is ignored).
    ``subject-kfold``: ``min(10, n_subjects)`` groups of subjects of near-equal size.

Validation (monitoring only; the reported model is the last epoch, nothing is selected on it): a seeded
fraction ``val_fraction`` of the *training* part, in the protocol's own unit — whole stimuli (stimulus-
level protocols), whole subjects (subject-level protocols), whole moments (``paper``). The same unit is
held out of pre-training's training moments/subjects and given to it as ``val_moments``/``val_subjects``.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physiosync.atomic import write_text_atomic
from physiosync.config import ProtocolConfig
from physiosync.data.table import WindowTable
from physiosync.errors import ConfigError, DataFormatError

FOLDS_FORMAT_VERSION = 1
LEAKY_PROTOCOLS = frozenset({"paper"})
OFFICIAL_SEED = 42  # the authors' `random.seed(42)` (method-spec §5.2)

_DESCRIPTIONS = {
    "paper": (
        "`paper` — the authors' subject-dependent protocol (method-spec §5.2): one model for all subjects "
        "pooled, 10 folds over shuffled stimulus moments (all subjects of a moment in the same fold). "
        "LEAKY: a test window's trial (same subject, same label, neighbouring seconds) is in training "
        "through its other windows, so accuracy largely measures trial identification (D5). Kept only to "
        "compare with the published numbers. By default the 1 s pre-training folds are the 1 s slices of "
        "the 5 s folds (D6 fixed); with `official` the authors' independent 1 s shuffle is used, so most "
        "1 s slices of test windows are also seen, unlabelled, in pre-training."
    ),
    "stimulus-kfold": (
        "`stimulus-kfold` — honest subject-dependent protocol: one model for all subjects pooled, whole "
        "stimuli (videos/clips) held out, so no window of a test trial of any subject is seen in "
        "pre-training, fine-tuning or validation. Pre-training uses all subjects on the training stimuli "
        "only. Does not leak."
    ),
    "subject-trial-kfold": (
        "`subject-trial-kfold` — honest per-subject protocol: one model per subject, k-fold over that "
        "subject's whole trials (k = number of trials is leave-one-trial-out). The trial split is the same "
        "for every subject, so pre-training (all subjects, training trials only) is shared across subjects "
        "of a trial fold. No test trial is seen in pre-training or fine-tuning. Does not leak."
    ),
    "loso": (
        "`loso` — leave-one-subject-out (cross-subject): each fold holds out one subject, never seen in "
        "pre-training, fine-tuning or validation (validation subjects come from the training subjects). "
        "Does not leak."
    ),
    "subject-kfold": (
        "`subject-kfold` — cross-subject k-fold over groups of subjects: test subjects are never seen in "
        "pre-training, fine-tuning or validation. Does not leak."
    ),
}


def describe_protocol(name: str) -> str:
    """One paragraph for reports: what the protocol holds out, and whether it leaks."""
    try:
        return _DESCRIPTIONS[name]
    except KeyError:
        raise ConfigError(f"unknown protocol {name!r}; expected one of {sorted(_DESCRIPTIONS)}") from None


# --------------------------------------------------------------------------------------------------
# data types


def _as_index(a: Any) -> np.ndarray:
    return np.unique(np.asarray(a, dtype=np.int64).reshape(-1))


@dataclass(frozen=True, eq=False)
class PretrainSplit:
    """What pre-training at one window length may see. Label-free, so shared across label dimensions.

    Attributes:
        window_s: Pre-training window length in seconds.
        train_moments, val_moments: Moment ids ``trial * n_windows + window`` at this length, sorted.
        train_subjects, val_subjects: Subject indices, sorted. Pre-training reads the windows of every
            (moment, subject) pair in ``train_moments × train_subjects`` (and val likewise).
    """

    window_s: float
    train_moments: np.ndarray
    val_moments: np.ndarray
    train_subjects: np.ndarray
    val_subjects: np.ndarray

    def __post_init__(self) -> None:
        for name in ("train_moments", "val_moments", "train_subjects", "val_subjects"):
            object.__setattr__(self, name, _as_index(getattr(self, name)))
        object.__setattr__(self, "window_s", float(self.window_s))

    def key(self) -> str:
        """Stable content hash (window length + arrays): equal splits share one pre-training run."""
        h = hashlib.sha256(f"pretrain-split/v1/{self.window_s!r}".encode())
        for name in ("train_moments", "val_moments", "train_subjects", "val_subjects"):
            arr = getattr(self, name)
            h.update(f"|{name}:{arr.size}|".encode())
            h.update(arr.astype("<i8").tobytes())
        return h.hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainSplit) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_s": self.window_s,
            "key": self.key(),
            **{n: getattr(self, n).tolist() for n in ("train_moments", "val_moments", "train_subjects", "val_subjects")},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainSplit:
        return cls(
            window_s=d["window_s"],
            train_moments=np.asarray(d["train_moments"], dtype=np.int64),
            val_moments=np.asarray(d["val_moments"], dtype=np.int64),
            train_subjects=np.asarray(d["train_subjects"], dtype=np.int64),
            val_subjects=np.asarray(d["val_subjects"], dtype=np.int64),
        )


@dataclass(frozen=True, eq=False)
class Fold:
    """One train/val/test split of the fine-tuning table plus its pre-training splits.

    Attributes:
        index: Fold number within the protocol (0-based).
        protocol: Protocol name.
        leaky: True for protocols whose test windows share trials with training (``paper``).
        train, val, test: Sorted row indices into the fine-tuning (longest window) WindowTable.
        subject: The subject of a per-subject model (``subject-trial-kfold``), else None.
        pretrain: Pre-training window length (s) -> :class:`PretrainSplit`.
        train_subjects, test_subjects: Subjects with rows in train / test (contract 5).
    """

    index: int
    protocol: str
    leaky: bool
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    subject: int | None = None
    pretrain: dict[float, PretrainSplit] = field(default_factory=dict)
    train_subjects: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_subjects: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        for name in ("train", "val", "test", "train_subjects", "test_subjects"):
            object.__setattr__(self, name, _as_index(getattr(self, name)))

    def pretrain_keys(self) -> dict[float, str]:
        """Window length -> pre-training split key (the pipeline runs one pre-training per distinct key)."""
        return {w: s.key() for w, s in self.pretrain.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "protocol": self.protocol,
            "leaky": self.leaky,
            "subject": self.subject,
            "train": self.train.tolist(),
            "val": self.val.tolist(),
            "test": self.test.tolist(),
            "train_subjects": self.train_subjects.tolist(),
            "test_subjects": self.test_subjects.tolist(),
            "pretrain": [s.to_dict() for s in self.pretrain.values()],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fold:
        splits = [PretrainSplit.from_dict(p) for p in d["pretrain"]]
        return cls(
            index=int(d["index"]),
            protocol=str(d["protocol"]),
            leaky=bool(d["leaky"]),
            train=np.asarray(d["train"], dtype=np.int64),
            val=np.asarray(d["val"], dtype=np.int64),
            test=np.asarray(d["test"], dtype=np.int64),
            subject=None if d["subject"] is None else int(d["subject"]),
            pretrain={s.window_s: s for s in splits},
            train_subjects=np.asarray(d["train_subjects"], dtype=np.int64),
            test_subjects=np.asarray(d["test_subjects"], dtype=np.int64),
        )


# --------------------------------------------------------------------------------------------------
# helpers


def _rng(seed: int, *tags: int) -> np.random.Generator:
    """Independent stream per purpose, so e.g. the validation draw does not shift when folds change."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *tags])


_TAG_FOLDS, _TAG_VAL = 1, 2


def _n_val(n_units: int, val_fraction: float) -> int:
    """Units to hold out for validation: at least one when asked for, always leaving one to train on."""
    if val_fraction <= 0 or n_units < 2:
        return 0
    return int(min(n_units - 1, max(1, round(val_fraction * n_units))))


def _carve_val(units: np.ndarray, val_fraction: float, seed: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``units`` into (train, val) by a seeded draw of whole units."""
    n = _n_val(len(units), val_fraction)
    perm = _rng(seed, _TAG_VAL, fold).permutation(len(units))
    return np.sort(units[perm[n:]]), np.sort(units[perm[:n]])


def _split_even(units: np.ndarray, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Seeded permutation of ``units`` cut into ``n_folds`` near-equal contiguous chunks."""
    perm = units[rng.permutation(len(units))]
    return [np.sort(c) for c in np.array_split(perm, n_folds)]


def _default_stimulus_folds(n_stimuli: int) -> int:
    divisors = [k for k in range(2, 11) if n_stimuli % k == 0 and n_stimuli // k >= 3]
    return max(divisors) if divisors else min(10, n_stimuli)


def _resolve_n_folds(protocol: ProtocolConfig, n_units: int, default: int, unit: str) -> int:
    k = default if protocol.n_folds is None else int(protocol.n_folds)
    if not 2 <= k <= n_units:
        raise ConfigError(f"protocol.n_folds: {protocol.name} needs 2 <= n_folds <= {n_units} {unit}, got {k}")
    return k


def _check_stimulus_per_trial(table: WindowTable) -> None:
    """Moment-pooled protocols assume trial t shows the same stimulus to every subject (true for DEAP/DREAMER).

    Stimulus -1 means the data do not say which stimulus a trial showed (own recordings without a
    ``stimulus`` column): such data are refused here rather than pooled by position.
    """
    if (table.stimulus < 0).any():
        raise ConfigError(
            "protocols that pool stimuli or trial positions across subjects (paper, stimulus-kfold, "
            "subject-trial-kfold) need to know which stimulus each trial showed, and these data do not (the "
            "trials table has no 'stimulus' column): add one, or use protocol.name=loso or subject-kfold")
    n_tr = int(table.trial.max()) + 1
    stim = np.full(n_tr, -1, dtype=np.int64)
    stim[table.trial] = table.stimulus
    if np.any(stim[table.trial] != table.stimulus):
        raise DataFormatError(
            "<window table>", "stimulus", "a trial index showing different stimuli to different subjects",
            "trial t = the same stimulus for every subject (moments are pooled across subjects)",
        )


def _resolve_n_windows(table: WindowTable, pretrain_window_s: tuple[float, ...], n_windows: dict[float, int] | None) -> dict[float, int]:
    out: dict[float, int] = {}
    for w in pretrain_window_s:
        w = float(w)
        if n_windows and w in n_windows:
            out[w] = int(n_windows[w])
            continue
        n = table.n_windows * table.window_s / w
        if abs(n - round(n)) > 1e-6:
            raise ConfigError(
                f"cannot derive windows per trial at {w} s from {table.n_windows} × {table.window_s} s; pass n_windows"
            )
        out[w] = int(round(n))
    return out


def _moments_of_trials(trials: np.ndarray, n_win: int) -> np.ndarray:
    """All moment ids of the given trials at a length with ``n_win`` windows per trial."""
    return (np.asarray(trials, dtype=np.int64)[:, None] * n_win + np.arange(n_win)[None, :]).reshape(-1)


def _slice_moments(moments: np.ndarray, table: WindowTable, window_s: float, n_win: int) -> np.ndarray:
    """Moments at ``window_s`` that lie inside the given fine-tuning-length moments (their slices).

    A 5 s window ``w`` of trial ``t`` holds 1 s windows ``5w .. 5w+4`` of the same trial (contract 2).
    """
    ratio = table.window_s / window_s
    r = int(round(ratio))
    if abs(ratio - r) > 1e-6 or r < 1:
        raise ConfigError(
            f"protocol paper: pre-training window {window_s} s must divide the fine-tuning window {table.window_s} s"
        )
    trial, win = np.divmod(np.asarray(moments, dtype=np.int64), table.n_windows)
    sub = (win[:, None] * r + np.arange(r)[None, :]).reshape(-1)
    return np.repeat(trial, r) * n_win + sub


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def _finish(
    table: WindowTable, index: int, name: str, train: np.ndarray, val: np.ndarray, test: np.ndarray,
    pretrain: dict[float, PretrainSplit], subject: int | None = None,
) -> Fold:
    return Fold(
        index=index, protocol=name, leaky=name in LEAKY_PROTOCOLS, train=_rows(train), val=_rows(val),
        test=_rows(test), subject=subject, pretrain=pretrain,
        train_subjects=table.subject[train], test_subjects=table.subject[test],
    )


# --------------------------------------------------------------------------------------------------
# strategies


def _folds_paper(table, protocol, seed, wins, val_fraction):  # type: ignore[no-untyped-def]
    _check_stimulus_per_trial(table)
    n_mom = int(table.trial.max() + 1) * table.n_windows
    k = _resolve_n_folds(protocol, n_mom, 10, "moments")
    subjects = np.unique(table.subject)
    moment = table.moment

    def official_chunks(n: int) -> list[np.ndarray]:
        # The authors: random.seed(42); random.shuffle(list(range(n))); fold k = [k*n/10, (k+1)*n/10).
        order = list(range(n))
        random.Random(OFFICIAL_SEED).shuffle(order)
        arr = np.asarray(order, dtype=np.int64)
        return [np.sort(arr[i * n // k:(i + 1) * n // k]) for i in range(k)]

    if protocol.official:
        test_chunks = official_chunks(n_mom)
    else:
        perm = _rng(seed, _TAG_FOLDS).permutation(n_mom)
        test_chunks = [np.sort(perm[i * n_mom // k:(i + 1) * n_mom // k]) for i in range(k)]
    official_pre = {w: official_chunks(n * (int(table.trial.max()) + 1)) for w, n in wins.items()} if protocol.official else {}

    folds = []
    all_moments = np.arange(n_mom)
    for i, test_m in enumerate(test_chunks):
        rest = np.setdiff1d(all_moments, test_m)
        if protocol.official:
            # Exactly the authors: no validation carved out (they monitored on the test fold; we monitor nothing).
            train_m, val_m = rest, np.zeros(0, np.int64)
        else:
            train_m, val_m = _carve_val(rest, val_fraction, seed, i)
        pretrain = {}
        for w, n_win in wins.items():
            if protocol.official:
                n_all = n_win * (int(table.trial.max()) + 1)
                pre_train = np.setdiff1d(np.arange(n_all), official_pre[w][i])
                pre_val = np.zeros(0, np.int64)
            else:
                pre_train = _slice_moments(train_m, table, w, n_win)
                pre_val = _slice_moments(val_m, table, w, n_win)
            pretrain[w] = PretrainSplit(w, pre_train, pre_val, subjects, subjects)
        folds.append(_finish(
            table, i, "paper", np.isin(moment, train_m), np.isin(moment, val_m), np.isin(moment, test_m), pretrain,
        ))
    return folds


def _trial_pretrain(wins: dict[float, int], train_trials, val_trials, subjects) -> dict[float, PretrainSplit]:  # type: ignore[no-untyped-def]
    return {
        w: PretrainSplit(w, _moments_of_trials(train_trials, n), _moments_of_trials(val_trials, n), subjects, subjects)
        for w, n in wins.items()
    }


def _folds_stimulus(table, protocol, seed, wins, val_fraction):  # type: ignore[no-untyped-def]
    _check_stimulus_per_trial(table)
    stimuli = np.unique(table.stimulus)
    k = _resolve_n_folds(protocol, len(stimuli), _default_stimulus_folds(len(stimuli)), "stimuli")
    subjects = np.unique(table.subject)
    folds = []
    for i, test_s in enumerate(_split_even(stimuli, k, _rng(seed, _TAG_FOLDS))):
        train_s, val_s = _carve_val(np.setdiff1d(stimuli, test_s), val_fraction, seed, i)
        pretrain = _trial_pretrain(
            wins, np.unique(table.trial[np.isin(table.stimulus, train_s)]),
            np.unique(table.trial[np.isin(table.stimulus, val_s)]), subjects,
        )
        folds.append(_finish(
            table, i, "stimulus-kfold", np.isin(table.stimulus, train_s), np.isin(table.stimulus, val_s),
            np.isin(table.stimulus, test_s), pretrain,
        ))
    return folds


def _folds_subject_trial(table, protocol, seed, wins, val_fraction):  # type: ignore[no-untyped-def]
    _check_stimulus_per_trial(table)
    trials = np.unique(table.trial)
    k = _resolve_n_folds(protocol, len(trials), min(5, len(trials)), "trials")
    subjects = np.unique(table.subject)
    folds = []
    # Fold order is trial-fold-major so that consecutive folds share one pre-training split.
    for j, test_t in enumerate(_split_even(trials, k, _rng(seed, _TAG_FOLDS))):
        train_t, val_t = _carve_val(np.setdiff1d(trials, test_t), val_fraction, seed, j)
        pretrain = _trial_pretrain(wins, train_t, val_t, subjects)
        for s in subjects:
            own = table.subject == s
            folds.append(_finish(
                table, len(folds), "subject-trial-kfold", own & np.isin(table.trial, train_t),
                own & np.isin(table.trial, val_t), own & np.isin(table.trial, test_t), pretrain, subject=int(s),
            ))
    return folds


def _folds_subjects(table, protocol, seed, wins, val_fraction):  # type: ignore[no-untyped-def]
    subjects = np.unique(table.subject)
    n_tr = int(table.trial.max()) + 1
    if protocol.name == "loso":
        groups = [np.asarray([s]) for s in subjects]
    else:
        k = _resolve_n_folds(protocol, len(subjects), min(10, len(subjects)), "subjects")
        groups = _split_even(subjects, k, _rng(seed, _TAG_FOLDS))
    folds = []
    for i, test_subj in enumerate(groups):
        train_subj, val_subj = _carve_val(np.setdiff1d(subjects, test_subj), val_fraction, seed, i)
        # Subject-level: pre-training sees every moment, but only of the training (or validation) subjects.
        pretrain = {
            w: PretrainSplit(w, np.arange(n_tr * n), np.arange(n_tr * n if len(val_subj) else 0), train_subj, val_subj)
            for w, n in wins.items()
        }
        folds.append(_finish(
            table, i, protocol.name, np.isin(table.subject, train_subj), np.isin(table.subject, val_subj),
            np.isin(table.subject, test_subj), pretrain,
        ))
    return folds


_STRATEGIES = {
    "paper": _folds_paper,
    "stimulus-kfold": _folds_stimulus,
    "subject-trial-kfold": _folds_subject_trial,
    "loso": _folds_subjects,
    "subject-kfold": _folds_subjects,
}


def make_folds(
    table: WindowTable,
    protocol: ProtocolConfig,
    seed: int,
    pretrain_window_s: tuple[float, ...] = (1.0, 5.0),
    n_windows: dict[float, int] | None = None,
    val_fraction: float = 0.1,
) -> list[Fold]:
    """All folds of a protocol, deterministic for ``seed`` (``paper`` + ``official`` ignores it, as the authors).

    Args:
        table: WindowTable of the fine-tuning (longest) window length; only metadata columns are read.
        protocol: Protocol name, ``n_folds`` (None = the documented default), ``official`` (``paper`` only).
        seed: Seeds every draw (fold assignment and validation carve-out, in independent streams).
        pretrain_window_s: Window lengths that get a :class:`PretrainSplit` per fold.
        n_windows: Windows per trial for each pre-training length; default ``table.n_windows *
            table.window_s / window_s`` (60 for 1 s on DEAP).
        val_fraction: Share of the training units held out for monitoring (0 = no validation).

    Returns:
        Every fold of the protocol (``ProtocolConfig.folds``, the subset to *run*, is left to the caller so
        the saved artefact is always complete).
    """
    if protocol.official and protocol.name != "paper":
        raise ConfigError(f"protocol.official applies to the `paper` protocol only, not {protocol.name!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if len(table) == 0:
        raise DataFormatError("<window table>", "rows", 0, "at least one window")
    wins = _resolve_n_windows(table, tuple(pretrain_window_s), n_windows)
    return _STRATEGIES[protocol.name](table, protocol, int(seed), wins, float(val_fraction))


# --------------------------------------------------------------------------------------------------
# artefacts


def save_folds(folds: list[Fold], path: str | Path, cache_hash: str, meta: dict[str, Any] | None = None) -> None:
    """Write ``folds.json`` atomically, bound to the cache it indexes (row indices are meaningless elsewhere).

    ``meta`` (e.g. protocol config, seed, table window length) is stored so a caller can tell whether the
    saved folds still match the current settings.
    """
    doc = {
        "format_version": FOLDS_FORMAT_VERSION,
        "cache_hash": cache_hash,
        "protocol": folds[0].protocol if folds else None,
        "leaky": bool(folds and folds[0].leaky),
        "n_folds": len(folds),
        "meta": meta or {},
        "folds": [f.to_dict() for f in folds],
    }
    write_text_atomic(path, json.dumps(doc, separators=(",", ":")))


def load_folds(path: str | Path, cache_hash: str, meta: dict[str, Any] | None = None) -> list[Fold]:
    """Read folds saved by :func:`save_folds`; refuse folds made for another cache or other settings.

    Raises:
        DataFormatError: unreadable file, unknown format version, a different cache hash, or a ``meta``
            entry that differs from the stored one.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, "<file>", "no such file", "a folds.json written by save_folds") from None
    except json.JSONDecodeError as e:
        raise DataFormatError(path, "<file>", f"invalid JSON ({e})", "a folds.json written by save_folds") from None
    if doc.get("format_version") != FOLDS_FORMAT_VERSION:
        raise DataFormatError(path, "format_version", doc.get("format_version"), FOLDS_FORMAT_VERSION)
    if doc.get("cache_hash") != cache_hash:
        raise DataFormatError(
            path, "cache_hash", f"{str(doc.get('cache_hash'))[:12]!r} (the cache these folds index)",
            f"{cache_hash[:12]!r} (the cache of the current data and preprocessing)",
        )
    for key, value in (meta or {}).items():
        stored = doc.get("meta", {}).get(key)
        if stored != value:
            raise DataFormatError(path, f"meta.{key}", f"{stored!r} (when these folds were drawn)",
                                  f"{value!r} (the current settings)")
    return [Fold.from_dict(d) for d in doc["folds"]]
