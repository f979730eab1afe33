"""DREAMER reader: the public single ``DREAMER.mat`` (zenodo 546113), struct layout of method-spec §1.2.

Implements contract 1 for DREAMER. The file is one MATLAB struct, so it is loaded whole with
``scipy.io.loadmat`` default options (≈450 MB on disk for the real file) and subjects are then yielded one
at a time, each validated: sampling rates and electrodes against the dataset facts, ``noOfVideoSequences``
clips per subject (18 in the public file), 61 s baselines, ECG (256 Hz) lasting as long as EEG (128 Hz)
within a second, finite real values of bounded magnitude, integer scores 1..5. Arrays are transposed to ``(n_chans, n_samples)`` views.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from physiosync.config import load_dataset_facts
from physiosync.data.readers.deap import NUMERIC_KINDS
from physiosync.data.readers.subjects import select_subjects
from physiosync.data.recording import MAX_ABS_SAMPLE, SubjectRecording, Trial
from physiosync.errors import DataFormatError

if TYPE_CHECKING:
    from physiosync.config import DatasetConfig

TOP_FIELDS = ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes", "noOfSubjects",
              "noOfVideoSequences")
SUBJECT_FIELDS = ("EEG", "ECG", "ScoreValence", "ScoreArousal", "ScoreDominance")
SCORE_FIELDS = {"valence": "ScoreValence", "arousal": "ScoreArousal", "dominance": "ScoreDominance"}


def load_dreamer_struct(path: str | Path) -> Any:
    """``loadmat(path)['DREAMER'][0, 0]`` with file-level errors turned into :class:`DataFormatError`."""

    path = Path(path)
    try:
        is_file = path.is_file()
    except OSError as e:
        raise DataFormatError(path, "<file>", f"unreadable ({e.strerror or type(e).__name__})",
                              "the public DREAMER.mat") from None
    if not is_file:
        found = "a broken symbolic link" if path.is_symlink() else "no such file"
        raise DataFormatError(path, "<file>", found, "the public DREAMER.mat")
    try:
        mat = _loadmat(path)
    except NotImplementedError:
        raise DataFormatError(path, "<file>", "MATLAB v7.3 (HDF5) file", "a MATLAB v5 .mat file") from None
    except Exception as e:  # noqa: BLE001 - any parse failure of the file is a format error
        msg = str(e) if len(str(e)) <= 200 else str(e)[:200] + "…"
        raise DataFormatError(path, "<file>", f"unreadable .mat ({type(e).__name__}: {msg})",
                              "the public DREAMER.mat (MATLAB v5)") from None
    if "DREAMER" not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataFormatError(path, "DREAMER", f"missing (variables {found})", "a struct variable 'DREAMER'")
    return _record(path, "DREAMER", mat["DREAMER"], TOP_FIELDS)


def _loadmat(path: Path) -> dict[str, Any]:
    """``loadmat`` that keeps MATLAB logical arrays recognisable and complex ones complex.

    Default options return a logical array as uint8, like the integer storage MATLAB uses for integral
    doubles, so a logical "signal" would pass as numbers; ``mat_dtype=True`` returns bool for it but casts
    complex doubles to real (dropping the imaginary part with a ComplexWarning). So the file is read with
    ``mat_dtype=True`` and that warning as an error; a file with complex values is re-read with default
    options, where the complex field keeps its dtype and the checks name it.
    """
    import scipy.io

    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            return scipy.io.loadmat(path, mat_dtype=True)
        except np.exceptions.ComplexWarning:
            pass
    return scipy.io.loadmat(path)


def _record(path: Path, field: str, value: Any, fields: tuple[str, ...]) -> Any:
    """The single element of a 1x1 MATLAB struct, checking that it has ``fields``."""
    names = getattr(getattr(value, "dtype", None), "names", None)
    if names is None or getattr(value, "size", 0) != 1:
        found = f"{type(value).__name__} shape {getattr(value, 'shape', None)}"
        raise DataFormatError(path, field, found, "a 1x1 struct")
    missing = [f for f in fields if f not in names]
    if missing:
        raise DataFormatError(path, field, f"fields {list(names)} (missing {missing})", f"fields {list(fields)}")
    return value.reshape(-1)[0]


def _unwrap(path: Path, field: str, value: Any) -> Any:
    """The content of a 1x1 object array (how loadmat wraps every struct field and cell)."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        return value.reshape(-1)[0]
    return value


def _scalar(path: Path, field: str, value: Any) -> float:
    """A finite real numeric 1x1 value (complex, logical, timedelta and NaN/Inf are refused)."""
    a = np.asarray(_unwrap(path, field, value))
    if a.size != 1 or a.dtype.kind not in NUMERIC_KINDS:
        raise DataFormatError(path, field, f"{a.dtype} shape {a.shape}", "a real numeric scalar")
    x = float(a.reshape(-1)[0])
    if not np.isfinite(x):
        raise DataFormatError(path, field, x, "a finite number")
    return x


def _count(path: Path, field: str, value: Any) -> int:
    """A positive integer count stored as a MATLAB double (``2.5`` is not read as 2)."""
    x = _scalar(path, field, value)
    if x != round(x) or x < 1:
        raise DataFormatError(path, field, x, "a positive integer")
    return int(x)


def _cells(path: Path, field: str, value: Any, n: int) -> list[Any]:
    """Elements of an n-element cell array (n×1 or 1×n object array)."""
    if isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        inner = value.reshape(-1)[0]
        if isinstance(inner, np.ndarray) and inner.dtype == object:  # a struct field wrapping the cell
            value = inner
    if not (isinstance(value, np.ndarray) and value.dtype == object and value.size == n and 1 in value.shape[:2]):
        found = f"{type(value).__name__} {getattr(value, 'dtype', '')} shape {getattr(value, 'shape', None)}"
        raise DataFormatError(path, field, found, f"a cell array of {n} elements ({n}x1)")
    return list(value.reshape(-1))


def _text(value: Any) -> str:
    a = np.asarray(value).reshape(-1)
    return "" if a.size == 0 else str(a[0])


def _signal(path: Path, field: str, value: Any, n_chans: int, min_samples: int = 1) -> np.ndarray:
    """A (samples, n_chans) numeric matrix -> float64 (n_chans, samples) view, checked finite."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in NUMERIC_KINDS:
        raise DataFormatError(path, field, f"{type(value).__name__} {getattr(value, 'dtype', '')}",
                              f"a real numeric (n_samples, {n_chans}) matrix")
    if value.ndim != 2 or value.shape[1] != n_chans or value.shape[0] < min_samples:
        raise DataFormatError(path, field, f"shape {value.shape}", f"(n_samples >= {min_samples}, {n_chans})")
    a = np.asarray(value, dtype=np.float64)
    # Per-channel reductions (NaN propagates and fails both); the bound keeps float64 statistics finite.
    ok = (a.max(axis=0) <= MAX_ABS_SAMPLE) & (a.min(axis=0) >= -MAX_ABS_SAMPLE)
    if not ok.all():
        c = int(np.argmin(ok))
        col = a[:, c]
        found = (f"NaN/Inf in channel {c}" if not np.isfinite(col).all()
                 else f"{col[np.argmax(np.abs(col))]:.3g} in channel {c}")
        raise DataFormatError(path, field, found, f"finite values of magnitude <= {MAX_ABS_SAMPLE:g}")
    return a.T


def _header(path: Path, rec: Any, facts: dict[str, Any]) -> tuple[list[Any], int]:
    """Validate the top-level fields; return the subject structs and the clip count."""
    eeg_names = list(facts["modalities"]["eeg"]["ch_names"])
    for fld, mod in (("EEG_SamplingRate", "eeg"), ("ECG_SamplingRate", "ecg")):
        rate = _scalar(path, f"DREAMER.{fld}", rec[fld])
        if rate != facts["modalities"][mod]["sfreq"]:
            raise DataFormatError(path, f"DREAMER.{fld}", rate, facts["modalities"][mod]["sfreq"])
    electrodes = [_text(e) for e in _cells(path, "DREAMER.EEG_Electrodes", rec["EEG_Electrodes"], len(eeg_names))]
    if electrodes != eeg_names:
        raise DataFormatError(path, "DREAMER.EEG_Electrodes", electrodes, eeg_names)
    n_subjects = _count(path, "DREAMER.noOfSubjects", rec["noOfSubjects"])
    n_clips = _count(path, "DREAMER.noOfVideoSequences", rec["noOfVideoSequences"])
    data = _cells(path, "DREAMER.Data", rec["Data"], n_subjects)
    return data, n_clips


def list_dreamer_subjects(path: str | Path) -> list[tuple[str, Path]]:
    """Subject ids ``s01``… with the file they come from.

    DREAMER is one struct, so listing parses the file (``scipy.io`` cannot read part of a struct);
    the signals are freed before returning.
    """
    path = Path(path)
    data, _ = _header(path, load_dreamer_struct(path), load_dataset_facts("dreamer"))
    return [(f"s{i + 1:02d}", path) for i in range(len(data))]


def _read_subject(path: Path, sid: str, subj: Any, n_clips: int, facts: dict[str, Any]) -> SubjectRecording:
    where = f"DREAMER.Data{{{int(sid[1:])}}}"
    rec = _record(path, where, subj, SUBJECT_FIELDS)
    mods = facts["modalities"]
    n_base_s = facts["baseline_s"]
    parts: dict[str, dict[str, list[np.ndarray]]] = {}
    for mod, fld in (("eeg", "EEG"), ("ecg", "ECG")):
        n_ch, sfreq = len(mods[mod]["ch_names"]), float(mods[mod]["sfreq"])
        sig = _record(path, f"{where}.{fld}", rec[fld], ("baseline", "stimuli"))
        parts[mod] = {}
        for part in ("baseline", "stimuli"):
            cells = _cells(path, f"{where}.{fld}.{part}", sig[part], n_clips)
            parts[mod][part] = [_signal(path, f"{where}.{fld}.{part}{{{k + 1}}}", c, n_ch) for k, c in enumerate(cells)]
        want = int(round(n_base_s * sfreq))
        for k, b in enumerate(parts[mod]["baseline"]):
            if b.shape[1] != want:
                raise DataFormatError(path, f"{where}.{fld}.baseline{{{k + 1}}}", f"{b.shape[1]} samples",
                                      f"{want} samples ({n_base_s:g} s at {sfreq:g} Hz)")
    ratio = mods["ecg"]["sfreq"] / mods["eeg"]["sfreq"]
    for k, (e, c) in enumerate(zip(parts["eeg"]["stimuli"], parts["ecg"]["stimuli"], strict=True)):
        if abs(c.shape[1] - ratio * e.shape[1]) > mods["ecg"]["sfreq"]:  # tolerance: one second
            raise DataFormatError(path, f"{where}.ECG.stimuli{{{k + 1}}}",
                                  f"{c.shape[1]} samples for {e.shape[1]} EEG samples",
                                  f"≈{ratio:g}× the EEG length (same duration within 1 s)")
    lo, hi = facts["rating_scale"]
    ratings = {}
    for name, fld in SCORE_FIELDS.items():
        raw = _unwrap(path, f"{where}.{fld}", rec[fld])
        s = np.asarray(raw)
        if s.dtype.kind not in NUMERIC_KINDS or s.size != n_clips:
            raise DataFormatError(path, f"{where}.{fld}", f"{s.dtype} shape {s.shape}", f"({n_clips}, 1) integer scores")
        s = s.reshape(-1).astype(np.float64)
        bad = ~np.isfinite(s) | (s != np.round(s)) | (s < lo) | (s > hi)
        if bad.any():
            k = int(np.argmax(bad))
            raise DataFormatError(path, f"{where}.{fld}", f"{s[k]!r} for clip {k + 1}", f"an integer {lo:g}..{hi:g}")
        ratings[name] = s
    trials = [
        Trial(
            stimulus=k,
            baseline={mod: parts[mod]["baseline"][k] for mod in ("eeg", "ecg")},
            signal={mod: parts[mod]["stimuli"][k] for mod in ("eeg", "ecg")},
        )
        for k in range(n_clips)
    ]
    info = {key: _text(_unwrap(path, key, rec[key])) for key in ("Age", "Gender") if key in rec.dtype.names}
    return SubjectRecording(
        subject=sid,
        sfreq={mod: float(mods[mod]["sfreq"]) for mod in ("eeg", "ecg")},
        ch_names={mod: list(mods[mod]["ch_names"]) for mod in ("eeg", "ecg")},
        trials=trials,
        ratings=ratings,
        source=path,
        info=info,
    )


def read_dreamer(path: str | Path, subjects: Iterable[str | int] | None = None) -> Iterator[SubjectRecording]:
    """Yield one validated :class:`SubjectRecording` per DREAMER subject (``s01``…), in file order.

    Args:
        path: The public ``DREAMER.mat``.
        subjects: Ids to yield (``"s01"``, ``"s1"``, ``1``); ``None`` = all. The whole file is loaded anyway.

    Raises:
        DataFormatError: naming the file, the struct path (e.g. ``DREAMER.Data{3}.EEG.stimuli{5}``), what was
            found and what was expected.
    """
    path = Path(path)
    facts = load_dataset_facts("dreamer")
    data, n_clips = _header(path, load_dreamer_struct(path), facts)
    chosen = select_subjects(path, [(f"s{i + 1:02d}", subj) for i, subj in enumerate(data)], subjects)
    return (_read_subject(path, sid, subj, n_clips, facts) for sid, subj in chosen)


# --------------------------------------------------------------------------------------------------
# registry entries (physiosync.data.readers.READERS)


def dreamer_file(data_dir: str | Path) -> Path:
    """``DREAMER.mat`` itself, or a directory containing it."""
    data_dir = Path(data_dir)
    try:
        is_dir = data_dir.is_dir()
        candidate = data_dir / "DREAMER.mat"
        has_file = is_dir and candidate.is_file()
    except OSError as e:
        raise DataFormatError(data_dir, "data_dir", f"unreadable ({e.strerror or type(e).__name__})",
                              "DREAMER.mat or its folder, readable by this user") from None
    if is_dir:
        if not has_file:
            raise DataFormatError(data_dir, "data_dir", "a directory without DREAMER.mat", "DREAMER.mat or its folder")
        return candidate
    return data_dir


def list_all(ds: DatasetConfig) -> list[tuple[str, Path]]:
    """Every subject of the ``DREAMER.mat`` that ``ds.data_dir`` is (or holds)."""
    return list_dreamer_subjects(dreamer_file(ds.data_dir))


def read_subject(ds: DatasetConfig, sid: str, path: Path) -> SubjectRecording:
    """One subject (parses the whole file: prefer :func:`read_subjects` for several)."""
    return next(read_dreamer(path, [sid]))


def read_subjects(ds: DatasetConfig, listing: list[tuple[str, Path]]) -> Iterator[SubjectRecording]:
    """The listed subjects, in order, parsing each distinct file once (not once per subject)."""
    for path in dict.fromkeys(p for _, p in listing):
        yield from read_dreamer(path, [sid for sid, p in listing if p == path])
