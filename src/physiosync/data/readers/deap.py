"""DEAP reader: ``data_preprocessed_python/sNN.dat`` (pickles) or ``data_preprocessed_matlab/sNN.mat``.

Implements contract 1 of ``docs/architecture.md`` for DEAP (method-spec §1.1). Subjects are the files named
``s<digits>.dat|.mat``, sorted numerically (the authors' code takes the unsorted directory listing and
treats stray files as subjects — defect D15). One subject is loaded at a time; every :class:`Trial` holds
*views* of the loaded array, so peak memory is one subject file (≈103 MB for 40 trials).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from physiosync.config import load_dataset_facts
from physiosync.data.readers.safe_pickle import load_pickle
from physiosync.data.readers.subjects import canonical_subject_id, select_subjects
from physiosync.data.recording import MAX_ABS_SAMPLE, SubjectRecording, Trial
from physiosync.errors import DataFormatError

if TYPE_CHECKING:
    from physiosync.config import DatasetConfig

DeapFormat = Literal["auto", "python", "matlab"]

_SUFFIX = {"python": ".dat", "matlab": ".mat"}
_SUBFOLDER = {"python": "data_preprocessed_python", "matlab": "data_preprocessed_matlab"}
_SUBJECT_FILE = re.compile(r"^s(\d+)\.(dat|mat)$")


def _scan(folder: Path, suffix: str) -> dict[str, Path]:
    """Subject id -> file for the ``s<digits><suffix>`` files directly inside ``folder``.

    Stray files (readme, ``.DS_Store``, partial downloads) and folders are not subjects and are skipped;
    but a *broken* entry that is named like a subject (a dangling symlink, a symlink loop, ``s0.dat``) is an
    error, since skipping it would silently drop a subject. Listing errors (permissions) are errors too.
    """
    found: dict[str, Path] = {}
    try:
        if not folder.is_dir():
            return found
        entries = list(folder.iterdir())
    except OSError as e:
        raise DataFormatError(folder, "data_dir", f"unreadable directory ({e.strerror or type(e).__name__})",
                              "a directory this user can list") from None
    for f in entries:
        m = _SUBJECT_FILE.match(f.name)
        if m is None or f".{m.group(2)}" != suffix:
            continue
        try:
            if not f.is_file():
                if f.is_symlink() and not f.exists():  # exists() follows the link: False if dangling or a loop
                    raise DataFormatError(f, "subject file", "a broken symbolic link (missing target or a loop)",
                                          "a readable subject file")
                continue  # a folder (or a link to one) is not a subject
        except OSError as e:
            raise DataFormatError(f, "subject file", f"unreadable ({e.strerror or type(e).__name__})",
                                  "a readable subject file") from None
        if int(m.group(1)) < 1:
            raise DataFormatError(f, "subject id", f"{f.stem!r} (subject numbers start at 1)", "s1/s01 or above")
        sid = canonical_subject_id(m.group(1))
        if sid in found:
            raise DataFormatError(folder, "subject files", f"{found[sid].name} and {f.name} are both {sid}",
                                  "one file per subject")
        found[sid] = f
    return found


def _locate(data_dir: Path, fmt: DeapFormat) -> tuple[str, dict[str, Path]]:
    """Find the subject files of the requested format in ``data_dir`` or its DEAP sub-folder."""
    try:
        is_dir, exists = data_dir.is_dir(), data_dir.exists()
    except OSError as e:
        raise DataFormatError(data_dir, "data_dir", f"unreadable ({e.strerror or type(e).__name__})",
                              "a DEAP data directory this user can list") from None
    if not is_dir:
        raise DataFormatError(data_dir, "data_dir", "not a directory" if exists else "no such directory",
                              "a DEAP data directory")
    formats = ["python", "matlab"] if fmt == "auto" else [fmt]
    hits: dict[str, dict[str, Path]] = {}
    for f in formats:
        for folder in (data_dir, data_dir / _SUBFOLDER[f]):
            files = _scan(folder, _SUFFIX[f])
            if files:
                if f in hits:
                    raise DataFormatError(data_dir, "subject files",
                                          f"{_SUFFIX[f]} files in both {data_dir} and {folder}",
                                          "one folder per format")
                hits[f] = files
    if not hits:
        want = " or ".join(f"s01{_SUFFIX[f]}" for f in formats)
        raise DataFormatError(data_dir, "subject files", "none",
                              f"{want}… in the directory or in {'/'.join(_SUBFOLDER[f] for f in formats)}")
    if len(hits) > 1:
        raise DataFormatError(data_dir, "format", "both .dat and .mat subject files",
                              "one format: pass format='python' or format='matlab'")
    (name, files), = hits.items()
    return name, files


def list_deap_subjects(
    data_dir: str | Path, subjects: Iterable[str | int] | None = None, format: DeapFormat = "auto"
) -> list[tuple[str, Path]]:
    """Subject ids and files, sorted numerically, without loading any signal.

    Args:
        data_dir: Folder holding ``sNN.dat``/``sNN.mat`` directly, or the DEAP root that contains
            ``data_preprocessed_python``/``data_preprocessed_matlab``.
        subjects: Ids to keep (``"s01"``, ``"s1"``, ``1``); ``None`` keeps all found.
        format: ``"python"`` (pickles), ``"matlab"`` or ``"auto"`` (whichever exists; both is an error).

    Raises:
        DataFormatError: no subject files, both formats under ``auto``, or a requested subject is missing.
    """
    data_dir = Path(data_dir)
    if format not in ("auto", "python", "matlab"):
        raise DataFormatError(data_dir, "format", repr(format), "'auto', 'python' or 'matlab'")
    _, files = _locate(data_dir, format)
    ordered = sorted(files, key=lambda s: int(s[1:]))
    return select_subjects(data_dir, [(s, files[s]) for s in ordered], subjects)


def _load_arrays(path: Path) -> dict[str, Any]:
    """The ``data`` and ``labels`` variables of one subject file, whatever its format."""
    if path.suffix == ".dat":
        obj = load_pickle(path)
        if not isinstance(obj, dict):
            raise DataFormatError(path, "<root>", type(obj).__name__, "a dict with keys 'data' and 'labels'")
        return obj
    import scipy.io

    try:
        # loadmat returns MATLAB logical arrays as uint8 (indistinguishable from 0/1 doubles); the variable
        # headers still say "logical", and reading them costs no signal I/O.
        classes = {name: cls for name, _, cls in scipy.io.whosmat(path)}
        mat = scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 (HDF5) files
        raise DataFormatError(path, "<file>", "MATLAB v7.3 (HDF5) file", "a MATLAB v5 .mat file") from None
    except Exception as e:  # noqa: BLE001 - any parse failure of the file is a format error
        raise DataFormatError(path, "<file>", f"unreadable .mat ({type(e).__name__}: {_clip(str(e))})",
                              "a MATLAB v5 .mat file with variables data and labels") from None
    for key in ("data", "labels"):
        if classes.get(key) == "logical":
            raise DataFormatError(path, key, "a MATLAB logical array", "a numeric (double) array")
    return mat


def _clip(text: str, limit: int = 200) -> str:
    """Bound what an error message echoes from a file (a hostile file controls these strings)."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def _describe_keys(obj: dict[Any, Any], limit: int = 6) -> str:
    """The keys of a loaded dict for an error message: any key types, bounded length, stable order."""
    keys = sorted((_safe_repr(k) for k in obj if not (isinstance(k, str) and k.startswith("__"))),
                  key=lambda k: (len(k), k))
    shown = ", ".join(k if len(k) <= 30 else k[:30] + "…" for k in keys[:limit])
    return f"[{shown}{f', … ({len(keys)} keys)' if len(keys) > limit else ''}]"


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - e.g. an int beyond Python's digit limit
        return f"<{type(value).__name__}>"


# Signal dtypes a subject file may hold: real floats and integers. Complex (the imaginary part would be
# dropped), bool (MATLAB logical), timedelta64 (an *integer* subtype for numpy), object and text are refused.
NUMERIC_KINDS = "fiu"


def _validate(path: Path, sid: str, obj: dict[str, Any], facts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, dtypes and values of one subject's arrays; return (data, labels) as float64.

    Values must be finite and at most :data:`~physiosync.data.recording.MAX_ABS_SAMPLE` in magnitude, so that
    preprocessing's float64 statistics (squares summed over a trial) cannot overflow.
    """
    n_ch, n_samp = facts["n_channels_file"], facts["n_samples_file"]
    n_ratings = len(facts["ratings"])
    arrays = {}
    for key in ("data", "labels"):
        if key not in obj:
            raise DataFormatError(path, key, f"missing (keys {_describe_keys(obj)})", "keys 'data' and 'labels'")
        a = obj[key]
        if not isinstance(a, np.ndarray) or a.dtype.kind not in NUMERIC_KINDS:
            found = f"{type(a).__name__} {getattr(a, 'dtype', '')}".strip()
            raise DataFormatError(path, key, found, "a real numeric numpy array (float or integer)")
        arrays[key] = np.asarray(a, dtype=np.float64)  # no copy for float64 input (the real files)
    data, labels = arrays["data"], arrays["labels"]
    if data.ndim != 3 or data.shape[0] < 1 or data.shape[1:] != (n_ch, n_samp):
        raise DataFormatError(path, "data", f"shape {data.shape}", f"(n_trials, {n_ch}, {n_samp})")
    if labels.shape != (data.shape[0], n_ratings):
        raise DataFormatError(path, "labels", f"shape {labels.shape}",
                              f"({data.shape[0]}, {n_ratings}) = (n_trials of data, {'/'.join(facts['ratings'])})")
    lo, hi = facts["rating_scale"]
    bad = ~np.isfinite(labels) | (labels < lo - 1e-6) | (labels > hi + 1e-6)
    if bad.any():
        t, r = np.argwhere(bad)[0]
        raise DataFormatError(path, "labels", f"{labels[t, r]!r} for subject {sid} trial {t} ({facts['ratings'][r]})",
                              f"finite ratings in [{lo}, {hi}]")
    # Two reductions per (trial, channel), no full-size temporary; NaN propagates and fails both tests.
    ok = (data.max(axis=2) <= MAX_ABS_SAMPLE) & (data.min(axis=2) >= -MAX_ABS_SAMPLE)
    if not ok.all():
        t, c = np.argwhere(~ok)[0]
        row = data[t, c]
        if not np.isfinite(row).all():
            found = f"NaN/Inf in subject {sid} trial {t} channel {c}"
        else:
            found = f"{row[np.argmax(np.abs(row))]:.3g} in subject {sid} trial {t} channel {c}"
        raise DataFormatError(path, "data", found, f"finite values of magnitude <= {MAX_ABS_SAMPLE:g}")
    return data, labels


def list_all(ds: DatasetConfig) -> list[tuple[str, Path]]:
    """Registry entry: every subject file of ``ds.data_dir`` in ``ds.format`` (selection is the registry's)."""
    return list_deap_subjects(ds.data_dir, None, ds.format)


def read_subject(ds: DatasetConfig, sid: str, path: Path) -> SubjectRecording:
    """Registry entry: one subject file."""
    return read_deap_subject(sid, path)


def read_deap_subject(sid: str, path: str | Path) -> SubjectRecording:
    """Load and validate one subject file into a :class:`SubjectRecording` of views (no signal copies)."""
    path = Path(path)
    facts = load_dataset_facts("deap")
    data, labels = _validate(path, sid, _load_arrays(path), facts)
    n_base = int(round(facts["baseline_s"] * facts["modalities"]["eeg"]["sfreq"]))
    slices = {}
    for mod, spec in facts["modalities"].items():
        first, last = spec["channel_indices"]
        slices[mod] = slice(first, last + 1)
    trials = [
        Trial(
            stimulus=t,
            baseline={mod: data[t, sl, :n_base] for mod, sl in slices.items()},
            signal={mod: data[t, sl, n_base:] for mod, sl in slices.items()},
        )
        for t in range(data.shape[0])
    ]
    return SubjectRecording(
        subject=sid,
        sfreq={mod: float(spec["sfreq"]) for mod, spec in facts["modalities"].items()},
        ch_names={mod: list(spec["ch_names"]) for mod, spec in facts["modalities"].items()},
        trials=trials,
        ratings={name: labels[:, i].copy() for i, name in enumerate(facts["ratings"])},
        source=path,
    )


def read_deap(
    data_dir: str | Path, subjects: Iterable[str | int] | None = None, format: DeapFormat = "auto"
) -> Iterator[SubjectRecording]:
    """Yield one validated :class:`SubjectRecording` per subject, in numeric order, loading lazily.

    Args:
        data_dir: See :func:`list_deap_subjects`.
        subjects: Ids to read; ``None`` = all.
        format: ``"auto"``, ``"python"`` or ``"matlab"``.

    Raises:
        DataFormatError: naming the file, field, what was found and what was expected.
    """
    listing = list_deap_subjects(data_dir, subjects, format)  # eager: a missing subject fails at the call
    return (read_deap_subject(sid, path) for sid, path in listing)
