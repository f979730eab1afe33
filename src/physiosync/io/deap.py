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
from typing import Any, Literal

import numpy as np

from physiosync.config import load_dataset_facts
from physiosync.errors import DataFormatError
from physiosync.io.safe_pickle import load_pickle
from physiosync.recording import SubjectRecording, Trial

DeapFormat = Literal["auto", "python", "matlab"]

_SUFFIX = {"python": ".dat", "matlab": ".mat"}
_SUBFOLDER = {"python": "data_preprocessed_python", "matlab": "data_preprocessed_matlab"}
_SUBJECT_FILE = re.compile(r"^s(\d+)\.(dat|mat)$")


def canonical_subject_id(subject: str | int) -> str:
    """``"s1"``, ``"s01"``, ``"1"`` or ``1`` -> ``"s01"`` (the id used everywhere downstream)."""
    text = str(subject).strip().lower()
    digits = text[1:] if text.startswith("s") else text
    if not digits.isdigit() or int(digits) < 1:
        raise ValueError(f"not a subject id: {subject!r} (expected e.g. 's01')")
    return f"s{int(digits):02d}"


def _scan(folder: Path, suffix: str) -> dict[str, Path]:
    """Subject id -> file for the ``s<digits><suffix>`` files directly inside ``folder``."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for f in folder.iterdir():
        m = _SUBJECT_FILE.match(f.name)
        if m is None or f".{m.group(2)}" != suffix or not f.is_file():
            continue  # stray files (readme, .DS_Store, partial downloads) are not subjects
        sid = canonical_subject_id(m.group(1))
        if sid in found:
            raise DataFormatError(folder, "subject files", f"{found[sid].name} and {f.name} are both {sid}",
                                  "one file per subject")
        found[sid] = f
    return found


def _locate(data_dir: Path, fmt: DeapFormat) -> tuple[str, dict[str, Path]]:
    """Find the subject files of the requested format in ``data_dir`` or its DEAP sub-folder."""
    if not data_dir.is_dir():
        raise DataFormatError(data_dir, "data_dir", "no such directory", "a DEAP data directory")
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
    if subjects is None:
        return [(s, files[s]) for s in ordered]
    wanted = []
    for s in subjects:
        try:
            wanted.append(canonical_subject_id(s))
        except ValueError as e:
            raise DataFormatError(data_dir, "subjects", repr(s), "ids like 's01'") from e
    missing = [s for s in wanted if s not in files]
    if missing:
        raise DataFormatError(data_dir, "subjects", f"missing {missing}", f"one of {ordered}")
    keep = set(wanted)
    return [(s, files[s]) for s in ordered if s in keep]


def _load_arrays(path: Path) -> dict[str, Any]:
    """The ``data`` and ``labels`` variables of one subject file, whatever its format."""
    if path.suffix == ".dat":
        obj = load_pickle(path)
        if not isinstance(obj, dict):
            raise DataFormatError(path, "<root>", type(obj).__name__, "a dict with keys 'data' and 'labels'")
        return obj
    import scipy.io

    try:
        return scipy.io.loadmat(path)
    except NotImplementedError:  # MATLAB v7.3 (HDF5) files
        raise DataFormatError(path, "<file>", "MATLAB v7.3 (HDF5) file", "a MATLAB v5 .mat file") from None
    except Exception as e:  # noqa: BLE001 - any parse failure of the file is a format error
        raise DataFormatError(path, "<file>", f"unreadable .mat ({type(e).__name__}: {e})",
                              "a MATLAB v5 .mat file with variables data and labels") from None


def _validate(path: Path, sid: str, obj: dict[str, Any], facts: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes, dtypes and finiteness of one subject's arrays; return (data, labels) as float64."""
    n_ch, n_samp = facts["n_channels_file"], facts["n_samples_file"]
    n_ratings = len(facts["ratings"])
    arrays = {}
    for key in ("data", "labels"):
        if key not in obj:
            present = sorted(k for k in obj if not str(k).startswith("__"))
            raise DataFormatError(path, key, f"missing (keys {present})", "keys 'data' and 'labels'")
        a = obj[key]
        if not isinstance(a, np.ndarray) or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            found = f"{type(a).__name__} {getattr(a, 'dtype', '')}".strip()
            raise DataFormatError(path, key, found, "a numeric numpy array")
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
    finite = np.isfinite(data).all(axis=2)  # (n_trials, n_channels), avoids a full-size mask copy
    if not finite.all():
        t, c = np.argwhere(~finite)[0]
        raise DataFormatError(path, "data", f"NaN/Inf in subject {sid} trial {t} channel {c}", "finite values")
    return data, labels


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
