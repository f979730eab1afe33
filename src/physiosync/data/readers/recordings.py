"""Own recordings (``dataset.name: recordings``): recording files through MNE, a trials table, a dataset file.

What a researcher brings (issue 10 §1, ``docs/datasets.md``): a folder of recordings in any format
``mne.io.read_raw`` opens (EDF/EDF+, BDF, FIF, BrainVision, EEGLAB ``.set``, GDF), one tab-separated
**trials table** in the spirit of BIDS ``events.tsv`` and a **dataset file** — a facts file of the same
schema as ``data/datasets/*.yaml`` with a ``recordings`` section. The dataset file says which channels are
EEG and which one is the peripheral signal, their units, the working rate, baseline and stimulus handling
and the ratings; the table says which file, second range and stimulus every trial is, and its ratings.

Implements contract 1: :func:`list_all` reads only the table (no signal), :func:`read_subject` opens each
of the subject's files with ``mne.io.read_raw(preload=False)`` and reads just the needed channels and
sample ranges (``raw.get_data(picks, start, stop)``) into a :class:`SubjectRecording` at each file's own
rate (``Trial.sfreq``: files of one subject may differ), scaled to µV / µS as the units declare.
Resampling, baseline removal and cropping to the common length are preprocessing's (facts-driven).

Trials of a subject are ordered by stimulus (the table's ``stimulus`` ids, sorted), so that trial ``t``
is the same stimulus for every subject, as the inter-subject temporal contrast and the stimulus-level
protocols need. Without a ``stimulus`` column the trials keep table order and their stimulus is -1
(unknown): those parts refuse such data, naming the column.

The cache stores ``(subjects, trials, …)`` arrays, so every subject needs the same trials: unequal counts
(or stimulus sets) are refused with a hint. Every error names the table (with its line) or the recording
file, the field, what was found and what was expected.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from physiosync.data.facts import DatasetFacts, ModalityFacts, load_facts_file
from physiosync.data.recording import MAX_ABS_SAMPLE, SubjectRecording, Trial
from physiosync.errors import ConfigError, DataFormatError, shorten

if TYPE_CHECKING:
    import mne

    from physiosync.config import DatasetConfig

DATASET_FILE = "dataset.yaml"  # default dataset file inside data_dir
# Suffixes of the recording files MNE's read_raw opens that this reader accepts (and looks for when
# checking that every recording in the folder has table rows).
RECORDING_SUFFIXES = (".edf", ".bdf", ".gdf", ".fif", ".vhdr", ".set")
COMPANION_SUFFIXES = (".vmrk", ".eeg", ".fdt")  # BrainVision marker/data, EEGLAB data: part of a recording
INFER_TYPES_SUFFIXES = (".edf", ".bdf")  # read_raw_edf/bdf take infer_types (GDF's reader does not)
REQUIRED_COLUMNS = ("subject", "file")
TIME_COLUMNS = ("onset", "duration")
BASELINE_COLUMNS = ("baseline_onset", "baseline_duration")
_SUBJECT_RE = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class TrialSpec:
    """One trial: where it is (file, seconds) and what it is (stimulus, ratings).

    Attributes:
        where: Table line (``trials.tsv line 7``) or annotation (``file annotation 3``), for errors.
        baseline: (onset, duration) seconds of the trial's baseline segment in the same file, or None.
    """

    where: str
    subject: str
    file: Path
    onset: float
    duration: float
    stimulus: str | None
    baseline: tuple[float, float] | None
    ratings: dict[str, float]


@dataclass(frozen=True)
class TrialsTable:
    """The parsed trials table: per canonical subject id its label, files and (table mode) trials."""

    path: Path
    labels: dict[str, str]  # canonical id ("s01") -> the table's subject label ("sub-01")
    files: dict[str, list[Path]]  # per subject, in table order
    trials: dict[str, list[TrialSpec]]  # per subject, in stimulus order (table mode; empty for annotations)
    stimuli: list[str] | None  # sorted stimulus ids (None: no stimulus column)


# --------------------------------------------------------------------------------------------------
# the dataset file


def dataset_file_path(ds: DatasetConfig) -> Path | None:
    """``ds.file``, else ``data_dir/dataset.yaml``; None when neither is set."""
    if ds.file is not None:
        return Path(ds.file)
    if ds.data_dir is None:
        return None
    return Path(ds.data_dir) / DATASET_FILE


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


@lru_cache(maxsize=32)
def _load_facts(key: tuple[str, int, int]) -> DatasetFacts:
    path = Path(key[0])
    facts = load_facts_file(path)
    if facts.recordings is None:
        raise ConfigError(f"{path}: key 'recordings': missing; a dataset file for dataset.name=recordings needs a "
                          "'recordings' section (trials_table, trials_from; docs/datasets.md)")
    for rating in ("valence", "arousal"):  # the label tasks arousal/valence/four read these (labels.py)
        if rating not in facts.ratings:
            raise ConfigError(f"{path}: key 'ratings': {facts.ratings} lacks {rating!r}; the label tasks "
                              "arousal, valence and four need the ratings valence and arousal")
    return facts


def facts(ds: DatasetConfig, resolve_channels: bool = False) -> DatasetFacts | None:
    """The validated dataset file of ``ds`` (None when no path is known yet); channel patterns resolved
    against the first recording of the table with ``resolve_channels``.

    Raises:
        ConfigError: a missing or invalid dataset file (naming it and the key).
        DataFormatError: a pattern no channel of the first recording matches.
    """
    path = dataset_file_path(ds)
    if path is None:
        return None
    try:
        key = _stat_key(path)
    except OSError as e:
        origin = "dataset.file" if ds.file is not None else f"the default {DATASET_FILE} in dataset.data_dir"
        raise ConfigError(f"{shorten(path)}: dataset file unreadable ({e.strerror or type(e).__name__}); "
                          f"expected the dataset file ({origin}; docs/datasets.md)") from None
    f = _load_facts(key)
    if resolve_channels and any(m.ch_names is None for m in f.modalities.values()):
        table = read_table(ds, f)
        first = next(iter(table.files.values()))[0]
        raw = open_raw(first, f)
        f = resolve_patterns(f, raw.ch_names, first, path)
    return f


def resolve_patterns(f: DatasetFacts, ch_names: list[str], source: Path, dataset_file: Path) -> DatasetFacts:
    """``f`` with every ``pattern`` modality's channels named: the recording's channels (in its order) that
    the pattern matches in full and no modality lists by name."""
    named = {n for m in f.modalities.values() for n in (m.ch_names or ())}
    mods: dict[str, ModalityFacts] = {}
    for mod, spec in f.modalities.items():
        if spec.ch_names is None:
            pat = re.compile(spec.pattern or "")
            names = [n for n in ch_names if pat.fullmatch(n) and n not in named]
            if not names:
                raise DataFormatError(source, "channels", shorten(ch_names, 200),
                                      f"channels matching modalities.{mod}.pattern {spec.pattern!r} of {dataset_file}")
            named |= set(names)
            spec = spec.model_copy(update={"ch_names": names, "pattern": None})
        mods[mod] = spec
    return f.model_copy(update={"modalities": mods})


# --------------------------------------------------------------------------------------------------
# the trials table


def table_path(ds: DatasetConfig, f: DatasetFacts) -> Path:
    """The trials table: ``recordings.trials_table`` relative to the dataset file."""
    assert f.recordings is not None
    dataset_file = dataset_file_path(ds)
    assert dataset_file is not None
    return dataset_file.parent / f.recordings.trials_table


def _number(table: Path, line: int, column: str, text: str, expected: str = "a number of seconds") -> float:
    try:
        x = float(text)
    except ValueError:
        raise DataFormatError(table, f"line {line} column {column!r}", repr(shorten(text, 60)), expected) from None
    if not math.isfinite(x):
        raise DataFormatError(table, f"line {line} column {column!r}", text, f"a finite number ({expected})")
    return x


def canonical_subject(table: Path, line: int, label: str) -> str:
    """``sub-01``, ``P3``, ``7`` -> ``s01``, ``s03``, ``s07`` (the ids ``dataset.subjects`` selects)."""
    m = _SUBJECT_RE.search(label.strip())
    if not m or int(m.group(1)) < 1:
        raise DataFormatError(table, f"line {line} column 'subject'", repr(shorten(label, 60)),
                              "a subject label ending in a positive number (sub-01, P3, 7)")
    return f"s{int(m.group(1)):02d}"


def _natural_key(text: str) -> list[Any]:
    """Sort key ordering ``stim2`` before ``stim10``."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def _check_rating(where_path: Path, where: str, name: str, text: str | float, f: DatasetFacts) -> float:
    lo, hi = f.rating_scale
    try:
        x = float(text)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and lo <= x <= hi):
        raise DataFormatError(where_path, f"{where} column {name!r}", repr(shorten(str(text), 60)),
                              f"a rating {lo:g}..{hi:g} (dataset file: rating_scale)")
    return x


def _baseline_of(table: Path, where: str, onset: float, given: tuple[float, float] | None,
                 f: DatasetFacts) -> tuple[float, float] | None:
    """The baseline segment of a trial: the table's, else the ``baseline_s`` before the onset."""
    if f.baseline_layout == "none":
        return None
    if given is None:
        if f.baseline_s is None:
            raise DataFormatError(table, "columns", "no baseline_onset/baseline_duration",
                                  "baseline columns, or baseline_s in the dataset file (baseline_layout "
                                  f"{f.baseline_layout!r}; 'none' for no baseline)")
        given = (onset - f.baseline_s, f.baseline_s)
    b_on, b_dur = given
    if b_dur <= 0 or b_on < 0:
        raise DataFormatError(table, f"{where} baseline", f"onset {b_on:g} s, duration {b_dur:g} s",
                              "a baseline of positive duration starting at or after 0 s")
    if f.baseline_s is not None and abs(b_dur - f.baseline_s) > 1e-6:
        raise DataFormatError(table, f"{where} column 'baseline_duration'", f"{b_dur:g} s",
                              f"{f.baseline_s:g} s (dataset file: baseline_s)")
    return given


# Parsed tables by (table stat, data_dir, dataset-file stat): a table is read once per process while
# neither file changes (listing, hashing and each subject's read all need it).
_TABLES: dict[tuple[Any, ...], TrialsTable] = {}


def read_table(ds: DatasetConfig, f: DatasetFacts) -> TrialsTable:
    """Parse and check the trials table of ``ds`` (cached while the file is unchanged).

    Raises:
        DataFormatError: naming the table, the line and the column (see the module docstring).
        ConfigError: no ``dataset.data_dir``.
    """
    path = table_path(ds, f)
    if ds.data_dir is None:
        raise ConfigError("dataset.data_dir is not set (the folder the trials table's file column is relative to)")
    try:
        key = _stat_key(path)
    except OSError as e:
        raise DataFormatError(path, "<file>", f"unreadable ({e.strerror or type(e).__name__})",
                              "the trials table named by recordings.trials_table of the dataset file") from None
    dataset_file = dataset_file_path(ds)
    assert dataset_file is not None
    cache_key = (key, str(Path(ds.data_dir).resolve()), _stat_key(dataset_file))
    if cache_key not in _TABLES:
        if len(_TABLES) > 8:
            _TABLES.clear()
        _TABLES[cache_key] = _parse_table(path, Path(ds.data_dir), f)
    return _TABLES[cache_key]


def _parse_table(path: Path, data_dir: Path, f: DatasetFacts) -> TrialsTable:
    assert f.recordings is not None
    by_table = f.recordings.trials_from == "table"
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataFormatError(path, "<file>", f"unreadable ({type(e).__name__}: {shorten(e, 120)})",
                              "a tab-separated UTF-8 trials table") from None
    if not rows:
        raise DataFormatError(path, "<header>", "an empty file", "a header line (subject, file, onset, …)")
    header = [h.strip() for h in rows[0]]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DataFormatError(path, "<header>", f"repeated columns {dupes}", "each column once")
    need = list(REQUIRED_COLUMNS) + (list(TIME_COLUMNS) + list(f.ratings) if by_table else [])
    missing = [c for c in need if c not in header]
    if missing:
        raise DataFormatError(path, "<header>", f"columns {shorten(header, 200)} (missing {missing})",
                              f"columns {need} (tab-separated; ratings as the dataset file's 'ratings')")
    has_base = [c in header for c in BASELINE_COLUMNS]
    if any(has_base) and not all(has_base):
        raise DataFormatError(path, "<header>", f"only {BASELINE_COLUMNS[has_base.index(True)]!r}",
                              f"both {BASELINE_COLUMNS[0]!r} and {BASELINE_COLUMNS[1]!r}, or neither")
    has_stim = "stimulus" in header
    col = {h: i for i, h in enumerate(header)}

    labels: dict[str, str] = {}
    files: dict[str, list[Path]] = {}
    trials: dict[str, list[TrialSpec]] = {}
    seen_stim: dict[tuple[str, str], int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise DataFormatError(path, f"line {line}", f"{len(row)} tab-separated fields", f"{len(header)} (as the header)")
        cell = {h: row[i].strip() for h, i in col.items()}
        label = cell["subject"]
        sid = canonical_subject(path, line, label)
        if labels.setdefault(sid, label) != label:
            raise DataFormatError(path, f"line {line} column 'subject'", repr(label),
                                  f"a label whose number differs from {labels[sid]!r} (both read as {sid})")
        rel = cell["file"]
        file = data_dir / rel
        if not rel or not file.is_file():
            raise DataFormatError(path, f"line {line} column 'file'", f"{shorten(rel, 120)!r}: no such file in {data_dir}",
                                  f"a recording file of subject {label} (relative to dataset.data_dir)")
        if not file.name.lower().endswith(RECORDING_SUFFIXES):
            raise DataFormatError(path, f"line {line} column 'file'", shorten(rel, 120),
                                  f"a recording MNE reads ({', '.join(RECORDING_SUFFIXES)})")
        if file not in files.setdefault(sid, []):
            files[sid].append(file)
        if not by_table:
            continue
        where = f"line {line}"
        onset = _number(path, line, "onset", cell["onset"])
        duration = _number(path, line, "duration", cell["duration"])
        if onset < 0 or duration <= 0:
            raise DataFormatError(path, f"{where} onset/duration", f"{onset:g} s / {duration:g} s",
                                  "onset >= 0 and duration > 0 seconds")
        given = None
        if all(has_base):
            given = (_number(path, line, "baseline_onset", cell["baseline_onset"]),
                     _number(path, line, "baseline_duration", cell["baseline_duration"]))
        stim = cell["stimulus"] if has_stim else None
        if has_stim:
            if not stim or stim == "n/a":
                raise DataFormatError(path, f"{where} column 'stimulus'", repr(stim), "a stimulus id")
            first = seen_stim.setdefault((sid, stim), line)
            if first != line:
                raise DataFormatError(path, f"{where} column 'stimulus'", f"{stim!r} again for subject {label} "
                                      f"(first on line {first})", "each stimulus once per subject")
        ratings = {r: _check_rating(path, where, r, cell[r], f) for r in f.ratings}
        trials.setdefault(sid, []).append(TrialSpec(
            where=f"{path.name} {where}", subject=sid, file=file, onset=onset, duration=duration, stimulus=stim,
            baseline=_baseline_of(path, where, onset, given, f), ratings=ratings))
    if not files:
        raise DataFormatError(path, "<rows>", "no trial rows", "one row per trial (or per file)")
    _check_every_recording_listed(path, data_dir, files)

    stimuli = None
    if has_stim and by_table:
        stimuli = sorted({t.stimulus for ts in trials.values() for t in ts if t.stimulus}, key=_natural_key)
        for sid, ts in trials.items():
            lacking = sorted(set(stimuli) - {t.stimulus for t in ts}, key=_natural_key)
            if lacking:
                raise DataFormatError(path, "stimulus", f"subject {labels[sid]} without stimuli "
                                      f"{shorten(lacking, 120)} that other subjects have",
                                      "the same stimuli for every subject",
                                      hint="the cache stores (subjects, trials, …): leave such subjects out with "
                                           "--set dataset.subjects=[...] or drop those stimuli from the table")
            ts.sort(key=lambda t: stimuli.index(t.stimulus))
    if by_table:
        counts = {sid: len(ts) for sid, ts in trials.items()}
        if len(set(counts.values())) > 1:
            raise DataFormatError(path, "trials per subject",
                                  shorten(", ".join(f"{labels[s]}: {n}" for s, n in sorted(counts.items())), 200),
                                  "the same number of trials for every subject",
                                  hint="the cache stores (subjects, trials, …): give every subject the same trials, "
                                       "or select subjects with equal counts via --set dataset.subjects=[...]")
    order = sorted(files)
    return TrialsTable(path=path, labels={s: labels[s] for s in order}, files={s: files[s] for s in order},
                       trials={s: trials.get(s, []) for s in order}, stimuli=stimuli)


def _check_every_recording_listed(path: Path, data_dir: Path, files: dict[str, list[Path]]) -> None:
    """A recording in the folder that no table row names is refused (a forgotten subject or run)."""
    listed = {p.resolve() for ps in files.values() for p in ps}
    for p in sorted(data_dir.rglob("*")):
        if p.name.startswith(".") or not p.name.lower().endswith(RECORDING_SUFFIXES) or not p.is_file():
            continue
        if p.resolve() not in listed:
            raise DataFormatError(p, "trials table", f"no row in {path.name} names this recording",
                                  f"every recording file in {data_dir} listed in the table (or moved out of it)")


# --------------------------------------------------------------------------------------------------
# reading recordings


def open_raw(path: Path, f: DatasetFacts) -> mne.io.BaseRaw:
    """``mne.io.read_raw(path, preload=False)`` with the dataset file's options; errors name the file."""
    import mne

    assert f.recordings is not None
    kwargs: dict[str, Any] = {}
    if f.recordings.read_raw.infer_types and path.name.lower().endswith(INFER_TYPES_SUFFIXES):
        kwargs["infer_types"] = True
    try:
        return mne.io.read_raw(path, preload=False, verbose="error", **kwargs)
    except Exception as e:  # noqa: BLE001 - any parse failure of a recording is a format error
        raise DataFormatError(path, "<file>", f"unreadable by mne.io.read_raw ({type(e).__name__}: {shorten(e, 160)})",
                              "a recording MNE opens (EDF/BDF/GDF/FIF/BrainVision/EEGLAB)") from None


def _annotation_trials(raw: mne.io.BaseRaw, file: Path, sid: str, f: DatasetFacts, dataset_file: Path) -> list[TrialSpec]:
    """Trials from a file's annotations whose description the dataset file maps."""
    assert f.recordings is not None and f.recordings.annotations is not None
    out = []
    for i, (onset, duration, desc) in enumerate(zip(raw.annotations.onset, raw.annotations.duration,
                                                    raw.annotations.description, strict=True)):
        meaning = f.recordings.annotations.get(str(desc))
        if meaning is None:
            continue
        where = f"{file.name} annotation {i} ({desc!r})"
        missing = [r for r in f.ratings if r not in meaning.ratings]
        if missing:
            raise ConfigError(f"{dataset_file}: key 'recordings.annotations.{desc}.ratings': lacks {missing} "
                              f"(every rating of 'ratings' {f.ratings})")
        ratings = {r: _check_rating(dataset_file, f"recordings.annotations.{desc}", r, meaning.ratings[r], f)
                   for r in f.ratings}
        # With a measurement date MNE counts annotation onsets from it, i.e. including the first sample's time
        onset = float(onset) - (raw.first_time if raw.annotations.orig_time is not None else 0.0)
        if float(duration) <= 0:
            raise DataFormatError(file, f"annotation {i} ({desc!r}) duration", f"{float(duration):g} s",
                                  "a trial annotation of positive duration")
        out.append(TrialSpec(where=where, subject=sid, file=file, onset=onset, duration=float(duration),
                             stimulus=meaning.stimulus or str(desc),
                             baseline=_baseline_of(file, where, onset, None, f), ratings=ratings))
    return out


def _segment(raw: mne.io.BaseRaw, picks: list[int], onset: float, duration: float, spec: TrialSpec,
             what: str, table: Path) -> np.ndarray:
    """Samples [onset, onset + duration) of the picked channels. Shape: (len(picks), n) float64."""
    sf = raw.info["sfreq"]
    start = int(round(onset * sf))
    stop = start + int(round(duration * sf))
    if start < 0 or stop > raw.n_times:
        raise DataFormatError(table, f"{spec.where} {what}",
                              f"{onset:g} s + {duration:g} s, beyond the {raw.n_times / sf:g} s of {spec.file.name}",
                              "a segment inside its recording")
    return raw.get_data(picks=picks, start=start, stop=stop)


def read_subject(ds: DatasetConfig, sid: str, path: Path) -> SubjectRecording:
    """One subject: every trial's stimulus (and baseline) segment of every modality, at the file's rate.

    Raises:
        DataFormatError: a channel missing from a file, another rate than the dataset file states, a trial
            outside its recording, non-finite or absurd samples, annotations that do not give the trials.
    """
    f = facts(ds, resolve_channels=True)
    assert f is not None and f.recordings is not None
    table = read_table(ds, f)
    dataset_file = dataset_file_path(ds)
    assert dataset_file is not None
    names = {mod: list(spec.ch_names or ()) for mod, spec in f.modalities.items()}
    specs: list[tuple[TrialSpec, dict[str, np.ndarray], dict[str, np.ndarray], float]] = []
    by_file = table.files[sid]
    annotated: list[TrialSpec] = []
    for file in by_file:
        raw = open_raw(file, f)
        wanted = [n for mod in names for n in names[mod]]
        absent = [n for n in wanted if n not in raw.ch_names]
        if absent:
            raise DataFormatError(file, "channels", f"missing {shorten(absent, 160)} (has {shorten(raw.ch_names, 200)})",
                                  f"the channels the dataset file {dataset_file.name} names")
        sf = float(raw.info["sfreq"])
        for mod, spec in f.modalities.items():
            if spec.sfreq is not None and spec.sfreq != sf:
                raise DataFormatError(file, "sfreq", f"{sf:g} Hz", f"{spec.sfreq:g} Hz (modalities.{mod}.sfreq)")
        if f.recordings.trials_from == "annotations":
            trials_here = _annotation_trials(raw, file, sid, f, dataset_file)
            annotated += trials_here
        else:
            trials_here = [t for t in table.trials[sid] if t.file == file]
        picks = {mod: [raw.ch_names.index(n) for n in names[mod]] for mod in names}
        for t in trials_here:
            sig, base = {}, {}
            for mod, spec in f.modalities.items():
                x = _segment(raw, picks[mod], t.onset, t.duration, t, "trial", table.path) * spec.scale
                _check_values(x, file, names[mod], t)
                sig[mod] = x
                if t.baseline is not None:
                    b = _segment(raw, picks[mod], *t.baseline, t, "baseline", table.path) * spec.scale
                    _check_values(b, file, names[mod], t)
                    base[mod] = b
            specs.append((t, sig, base, sf))
    if f.recordings.trials_from == "annotations":
        if not specs:
            raise DataFormatError(by_file[0], "annotations", "no annotation the dataset file maps",
                                  f"annotations with descriptions {shorten(sorted(f.recordings.annotations or {}), 160)}")
        seen: dict[str, str] = {}
        for t in annotated:
            if t.stimulus in seen:
                raise DataFormatError(t.file, t.where, f"stimulus {t.stimulus!r} again (first: {seen[t.stimulus]})",
                                      "each stimulus once per subject")
            seen[str(t.stimulus)] = t.where
        order = sorted(seen, key=_natural_key)
        specs.sort(key=lambda s: order.index(str(s[0].stimulus)))
        all_stimuli = sorted({m.stimulus or d for d, m in (f.recordings.annotations or {}).items()}, key=_natural_key)
        index = {s: i for i, s in enumerate(all_stimuli)}
    else:
        index = {s: i for i, s in enumerate(table.stimuli or [])}
        position = {id(t): i for i, t in enumerate(table.trials[sid])}
        specs.sort(key=lambda s: position[id(s[0])])
    trials = [Trial(stimulus=index.get(str(t.stimulus), -1) if t.stimulus is not None else -1,
                    baseline=base, signal=sig, sfreq={mod: sf for mod in f.modalities})
              for t, sig, base, sf in specs]
    ratings = {r: np.array([t.ratings[r] for t, *_ in specs], dtype=np.float64) for r in f.ratings}
    first_rate = specs[0][3]
    return SubjectRecording(
        subject=sid, sfreq={mod: first_rate for mod in f.modalities}, ch_names=names, trials=trials,
        ratings=ratings, source=table.path,
        info={"label": table.labels[sid], "files": [str(p) for p in by_file],
              "trial_seconds": [t.duration for t, *_ in specs]},
    )


def _check_values(x: np.ndarray, file: Path, names: list[str], t: TrialSpec) -> None:
    ok = (x.max(axis=1) <= MAX_ABS_SAMPLE) & (x.min(axis=1) >= -MAX_ABS_SAMPLE)  # NaN fails both
    if not ok.all():
        c = int(np.argmin(ok))
        raise DataFormatError(file, f"channel {names[c]!r} ({t.where})", "NaN/Inf or a value beyond 1e100",
                              "finite samples")


# --------------------------------------------------------------------------------------------------
# registry entries (physiosync.data.readers.READERS)


def list_all(ds: DatasetConfig) -> list[tuple[str, Path]]:
    """Every subject of the trials table (``s01``… from the table's labels), each with the table as source.

    Reads the dataset file and the table only (no recording is opened).
    """
    f = facts(ds)
    if f is None:
        raise ConfigError("dataset.data_dir is not set (use --data-dir or dataset.data_dir in the config)")
    table = read_table(ds, f)
    return [(sid, table.path) for sid in table.files]


def input_files(ds: DatasetConfig, listing: list[tuple[str, Path]]) -> list[Path]:
    """What the cache hash covers: the dataset file, the table and every file of the listed subjects'
    recordings (with their BrainVision/EEGLAB companion files)."""
    f = facts(ds)
    assert f is not None
    table = read_table(ds, f)
    dataset_file = dataset_file_path(ds)
    assert dataset_file is not None
    out = [dataset_file, table.path]
    for sid, _ in listing:
        for p in table.files[sid]:
            out.append(p)
            out += [c for c in (p.with_suffix(s) for s in COMPANION_SUFFIXES) if c.is_file() and c != p]
    return list(dict.fromkeys(out))
