"""Synthetic "own recordings": real EDF/BDF/FIF/BrainVision/EEGLAB files, a trials table and a dataset file.

What a researcher with their own multimodal study would hand physiosync (issue 10): a folder of recording
files in the format their amplifier writes, one BIDS-``events.tsv``-like **trials table** (``trials.tsv``)
and a **dataset file** (``dataset.yaml``) saying which channels are what. The signals come from the same
stimulus-locked, label-dependent generator as the DEAP/DREAMER twins (:mod:`physiosync.synth.signals`), so
the structure the method should find (inter-subject and cross-modal synchronisation, label effects scaled
by ``effect``) is the same; only the packaging differs:

* every subject sees every stimulus once, in its own random order, spread over ``files_per_subject``
  files (runs) — so the table's ``stimulus`` column, not a trial's position, says what was shown;
* a file is continuous: a rest lead-in, then per trial a rest gap (4–8 s), a pre-stimulus baseline
  (``baseline_seconds``) and the stimulus block, then a rest tail. Each (gap + baseline + stimulus) block
  is one call of the generator (the gap is part of its stimulus-free prefix), so block joins — small steps
  of the background — lie inside rest gaps, never inside a baseline or a trial the table points at;
* per-stimulus durations (fixed, or drawn in [T, 1.5 T] with ``vary_trial_length``: the same film has the
  same length for everyone), sampling rates cycled over files (``sfreq=(256, 512)`` alternates);
* all onsets and durations lie on a 0.5 s grid and files last whole seconds, so every table time is a
  whole number of samples at any even rate and EDF/BDF need no padding record.

Channels: EEG with 10-20 names (``biosemi32``: DEAP's 32 BioSemi positions; ``epoc14``: DREAMER's Emotiv
EPOC) in volts, plus one peripheral channel — ``GSR`` (skin conductance, the DEAP twin's GSR / 1000 → 2–8 µS
tonic level) or ``ECG`` (one lead, volts) — or none (EEG-only data). Ratings valence, arousal, dominance,
liking on 1–9 come from :func:`physiosync.synth.deap.make_deap_ratings` (per stimulus true affect + subject
noise); the label effects follow the subject's own rating class (≥ 5 = high), as in the DEAP twin.

Writers and what each format keeps (read back with ``mne.io.read_raw``; tested in
``tests/synth/test_recordings.py``):

* **FIF** (``raw.save``, float32): names, types (``eeg``/``gsr``/``ecg``), units (SI: V, S), annotations.
* **EDF/BDF** (``mne.export.export_raw`` → edfio, 16/24-bit integers): labels carry the EDF+ type prefix
  (``EEG Fp1``, ``ECG ECG``, ``MISC GSR``) — read with ``infer_types=True`` to get names ``Fp1``… and types
  back. MNE derives a physical range per channel type from the data (``physical_range="auto"``); the
  quantisation step is (physical max − min) / (digital max − min) of the header. MNE's export writes
  non-voltage channels unscaled with an empty physical dimension and its EDF reader knows no GSR type, so
  the GSR is a ``misc`` channel holding µS (unit stated in ``dataset.yaml``).
* **BrainVision** (``mne.export.export_raw`` → pybv, float32): the format has no channel types: µV
  channels read back as ``eeg`` (the ECG too), others as ``misc``; pybv writes only µV as a unit (the GSR
  is ``misc`` in µS, unit ``n/a``; its warning about that is silenced here). Markers are ``Comment`` type:
  MNE reads the description back as ``Comment/<stimulus>``.
* **EEGLAB** (``eeglabio.raw.export_set``, float32 µV): called directly because ``mne.export`` passes no
  channel types (every channel would read back as ``eeg``); with ``chanlocs.type`` MNE reads ``eeg``/
  ``gsr``/``ecg`` back (values in SI: eeglabio scales every channel ×1e6, MNE's reader ×1e-6). No channel
  positions are written. The MAT header's creation time is replaced by a fixed text (reproducible bytes).
* **GDF**: MNE reads GDF but neither MNE nor these helpers write it; no GDF files are generated.

Everything is written atomically: each recording into a private temp folder, then moved into place (for
BrainVision ``.eeg`` and ``.vmrk`` before the ``.vhdr`` that names them); the trials table and the
dataset file are written last, so a folder with a ``trials.tsv`` is complete.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from physiosync.atomic import TEMP_SUFFIX, clean_stale_temps, is_temp_name, temp_prefix, write_text_atomic
from physiosync.errors import ConfigError
from physiosync.synth import signals as sig
from physiosync.synth.deap import MAT_HEADER, make_deap_ratings

if TYPE_CHECKING:
    import mne

Format = Literal["edf", "bdf", "fif", "brainvision", "eeglab"]
Peripheral = Literal["gsr", "ecg", "none"]
FORMATS: dict[str, str] = {"edf": ".edf", "bdf": ".bdf", "fif": ".fif", "brainvision": ".vhdr", "eeglab": ".set"}
PERIPHERALS = ("gsr", "ecg", "none")

# 10-20 montages (electrode names of real systems): DEAP's 32 BioSemi positions in its file order, and
# DREAMER's 14 Emotiv EPOC positions.
MONTAGES: dict[str, tuple[str, ...]] = {
    "biosemi32": ("Fp1", "AF3", "F3", "F7", "FC5", "FC1", "C3", "T7", "CP5", "CP1", "P3", "P7", "PO3", "O1",
                  "Oz", "Pz", "Fp2", "AF4", "Fz", "F4", "F8", "FC6", "FC2", "Cz", "C4", "T8", "CP6", "CP2",
                  "P4", "P8", "PO4", "O2"),
    "epoc14": ("AF3", "F7", "F3", "FC5", "T7", "P7", "O1", "O2", "P8", "T8", "FC6", "F4", "F8", "AF4"),
}

RATINGS = ("valence", "arousal", "dominance", "liking")
RATING_SCALE = (1.0, 9.0)
THRESHOLD = 5.0  # high <=> rating >= 5, as for DEAP (method-spec §2.1); drives the planted label effects
TABLE_COLUMNS = ("subject", "file", "onset", "duration", "stimulus", "baseline_onset", "baseline_duration",
                 *RATINGS)
TABLE_NAME, DATASET_NAME = "trials.tsv", "dataset.yaml"
WORKING_SFREQ = 128.0  # the method's working rate (method-spec §2): every modality is resampled to it
GRID_S = 0.5  # every onset and duration is a multiple of this (whole samples at any even rate)
LEAD_IN_S = 5.0  # rest before the first trial's gap
GAP_S = (4.0, 8.0)  # rest between trials, drawn per trial on the grid
UV, MV = 1e-6, 1e-3  # generator units (µV EEG, mV ECG) -> volts
GSR_US_PER_RAW = 1e-3  # the DEAP twin's GSR raw units / 1000 -> µS (tonic 2–8 µS, a typical adult range)
MEAS_DATE = dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.timezone.utc)  # fixed, so files are reproducible
# Streams of the layout randomness (presentation order, gaps; stimulus durations), apart from the signal
# streams of synth/signals.py so that the signals of a subject do not depend on the layout draws.
STREAM_LAYOUT, STREAM_DURATION = 11, 12

# How the peripheral channel is typed and scaled per format: (MNE channel type, generator unit -> stored
# value factor, unit of what mne.io.read_raw returns). FIF and EEGLAB carry a GSR type (SI: siemens); EDF,
# BDF and BrainVision do not, so there the GSR is a misc channel holding µS (see the module docstring).
_GSR_AS: dict[str, tuple[str, float, str]] = {
    "fif": ("gsr", GSR_US_PER_RAW * 1e-6, "S"), "eeglab": ("gsr", GSR_US_PER_RAW * 1e-6, "S"),
    "edf": ("misc", GSR_US_PER_RAW, "uS"), "bdf": ("misc", GSR_US_PER_RAW, "uS"),
    "brainvision": ("misc", GSR_US_PER_RAW, "uS"),
}


@dataclass(frozen=True)
class TrialRow:
    """One row of the trials table (times in seconds from the start of ``file``)."""

    subject: str
    file: str
    onset: float
    duration: float
    stimulus: str
    baseline_onset: float
    baseline_duration: float
    ratings: tuple[float, float, float, float]  # RATINGS order


@dataclass(frozen=True)
class FileLayout:
    """One recording file: its name, rate, length and trials (stimulus index, rest gap, duration)."""

    subject: int
    run: int
    name: str
    sfreq: float
    stimuli: tuple[int, ...]
    gaps_s: tuple[float, ...]
    durations_s: tuple[float, ...]
    tail_s: float  # rest after the last trial, up to a whole number of seconds of file


@dataclass(frozen=True)
class WrittenRecordings:
    """What :func:`write_synthetic_recordings` wrote: recording files (table order), table, dataset file."""

    files: list[Path]
    table: Path
    dataset_file: Path
    rows: list[TrialRow]


def _on_grid(x: float) -> float:
    return float(np.round(x / GRID_S) * GRID_S)


def stimulus_durations(seed: int, n_stimuli: int, trial_seconds: float, vary: bool) -> np.ndarray:
    """Seconds of each stimulus, shared by all subjects (same film, same length). Shape: (n_stimuli,)."""
    if not vary:
        return np.full(n_stimuli, trial_seconds)
    rng = sig.make_generator(seed, STREAM_DURATION, 0)
    return np.array([_on_grid(x) for x in rng.uniform(trial_seconds, 1.5 * trial_seconds, n_stimuli)])


def make_layout(
    seed: int,
    n_subjects: int,
    n_trials: int,
    files_per_subject: int,
    sfreq: tuple[float, ...],
    durations_s: np.ndarray,
    baseline_seconds: float,
    extension: str,
) -> list[FileLayout]:
    """Files of every subject, subject-major: presentation order, gaps, rates (cycled over all files).

    Layout draws come from their own (seed, subject) stream and do not depend on the rates, so the trials
    table is the same whatever ``sfreq`` is.
    """
    layout = []
    for s in range(1, n_subjects + 1):
        rng = sig.make_generator(seed, STREAM_LAYOUT, s)
        order = rng.permutation(n_trials)
        gaps = [_on_grid(g) for g in rng.uniform(*GAP_S, n_trials)]
        tail_gap = _on_grid(rng.uniform(*GAP_S))
        for run, chunk in enumerate(np.array_split(np.arange(n_trials), files_per_subject)):
            stimuli = tuple(int(order[i]) for i in chunk)
            durs = tuple(float(durations_s[k]) for k in stimuli)
            used = LEAD_IN_S + sum(gaps[i] for i in chunk) + len(chunk) * baseline_seconds + sum(durs) + tail_gap
            tail = tail_gap + (np.ceil(used) - used)  # whole seconds: EDF/BDF records are 1 s long
            index = (s - 1) * files_per_subject + run
            layout.append(FileLayout(
                subject=s, run=run + 1, name=f"{subject_id(s)}_run-{run + 1:02d}_eeg{extension}",
                sfreq=float(sfreq[index % len(sfreq)]), stimuli=stimuli,
                gaps_s=tuple(gaps[i] for i in chunk), durations_s=durs, tail_s=float(tail)))
    return layout


def subject_id(subject: int) -> str:
    """Subject label used in file names and the table's ``subject`` column (BIDS style ``sub-01``)."""
    return f"sub-{subject:02d}"


def stimulus_id(stimulus: int) -> str:
    """Identifier of stimulus ``stimulus`` (0-based; the generator's stimulus index), e.g. ``stim01``."""
    return f"stim{stimulus + 1:02d}"


def _mask(names: tuple[str, ...], prefixes: tuple[str, ...]) -> np.ndarray:
    return np.array([n.startswith(prefixes) for n in names])


def _make_file_signals(
    rng: np.random.Generator,
    f: FileLayout,
    eeg_params: dict,
    per_params: dict | None,
    peripheral: str,
    names: tuple[str, ...],
    ratings: np.ndarray,
    effect: float,
    seed: int,
    baseline_seconds: float,
) -> tuple[np.ndarray, np.ndarray | None, list[TrialRow]]:
    """EEG (µV) and peripheral (generator units) of one file, continuous, and its table rows.

    Returns:
        eeg Shape: (n_eeg, n_samples); peripheral Shape: (1, n_samples) or None; rows in onset order.
    """
    fs = f.sfreq
    asym = _mask(names, ("Fp2", "AF4", "F4", "F8")).astype(float) - _mask(names, ("Fp1", "AF3", "F3", "F7"))
    slow = _mask(names, ("Fp", "AF", "O"))
    eeg_parts, per_parts, rows = [], [], []
    t = 0.0

    def block(n_pre: int, latent: np.ndarray, v: float, a: float) -> None:
        vs, as_ = np.array([v]), np.array([a])
        eeg_parts.append(sig.make_eeg(rng, eeg_params, latent, n_pre, vs, as_, effect, asym, slow, fs,
                                      band=(0.5, 45.0))[0])
        if peripheral == "gsr":
            per_parts.append(sig.make_gsr(rng, per_params, latent, n_pre, as_, effect, fs)[0])
        elif peripheral == "ecg":
            per_parts.append(sig.make_ecg(rng, per_params, latent, n_pre, as_, effect, fs)[0])

    for i, k in enumerate(f.stimuli):
        rest = (LEAD_IN_S if i == 0 else 0.0) + f.gaps_s[i]
        n_pre = int(round((rest + baseline_seconds) * fs))
        n_stim = int(round(f.durations_s[i] * fs))
        latent = sig.make_stimulus_latent(seed, k, n_stim, fs)[None, :]
        v = 1.0 if ratings[k, 0] >= THRESHOLD else -1.0
        a = 1.0 if ratings[k, 1] >= THRESHOLD else -1.0
        block(n_pre, latent, v, a)
        base_on = t + rest
        rows.append(TrialRow(subject_id(f.subject), f.name, base_on + baseline_seconds, f.durations_s[i],
                             stimulus_id(k), base_on, baseline_seconds, tuple(float(r) for r in ratings[k])))
        t = base_on + baseline_seconds + f.durations_s[i]
    block(int(round(f.tail_s * fs)), np.zeros((1, 0)), 0.0, 0.0)  # rest tail: no stimulus, no label effect
    eeg = np.concatenate(eeg_parts, axis=1)
    per = np.concatenate(per_parts, axis=1) if per_parts else None
    return eeg, per, rows


def _make_raw(f: FileLayout, fmt: str, names: tuple[str, ...], eeg_uv: np.ndarray, per: np.ndarray | None,
              peripheral: str, rows: list[TrialRow]) -> mne.io.RawArray:
    """The MNE object written: data in MNE's SI convention (peripheral as per :data:`_GSR_AS`)."""
    import mne

    data = [eeg_uv * UV]
    ch_names, ch_types = list(names), ["eeg"] * len(names)
    if peripheral == "gsr":
        kind, factor, _ = _GSR_AS[fmt]
        data.append(per * factor)
        ch_names.append("GSR")
        ch_types.append(kind)
    elif peripheral == "ecg":
        data.append(per * MV)
        ch_names.append("ECG")
        ch_types.append("ecg")
    info = mne.create_info(ch_names, f.sfreq, ch_types, verbose=False)
    raw = mne.io.RawArray(np.concatenate(data, axis=0), info, verbose=False)
    raw.set_meas_date(MEAS_DATE + dt.timedelta(days=f.subject - 1, hours=f.run - 1))
    raw.set_annotations(mne.Annotations([r.onset for r in rows], [r.duration for r in rows],
                                        [r.stimulus for r in rows]))
    return raw


def _export(raw: mne.io.BaseRaw, fmt: str, path: Path) -> None:
    """Write ``raw`` to ``path`` (inside a temp folder) in ``fmt``; see the module docstring per format."""
    import mne

    if fmt == "fif":
        raw.save(path, fmt="single", verbose=False)
    elif fmt in ("edf", "bdf"):
        mne.export.export_raw(path, raw, fmt=fmt, physical_range="auto", add_ch_type=True, verbose=False)
    elif fmt == "brainvision":
        with warnings.catch_warnings():
            # float64 -> float32 (the format's sample type) and "non-voltage unit" for the µS channel: both
            # expected, documented above.
            warnings.filterwarnings("ignore", message="Encountered data in 'double' format")
            warnings.filterwarnings("ignore", message="Encountered unsupported non-voltage units")
            mne.export.export_raw(path, raw, fmt="brainvision", verbose=False)
    else:
        import eeglabio.raw

        ann = raw.annotations
        eeglabio.raw.export_set(str(path), data=raw.get_data(), sfreq=raw.info["sfreq"], ch_names=raw.ch_names,
                                annotations=[list(ann.description), np.asarray(ann.onset), np.asarray(ann.duration)],
                                ch_types=[t.upper() for t in raw.get_channel_types()])
        with open(path, "r+b") as fh:  # scipy's savemat stamps the creation time into the 116-byte header text
            fh.write(MAT_HEADER.ljust(116, b" "))


def _write_recording(out_dir: Path, raw: mne.io.BaseRaw, fmt: str, name: str) -> None:
    """Export into a private temp folder, then move the files into ``out_dir`` (header file last)."""
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(name), suffix=TEMP_SUFFIX, dir=out_dir))
    try:
        _export(raw, fmt, tmp / name)
        produced = sorted(tmp.iterdir(), key=lambda p: p.name == name)  # the file the table names goes last
        for p in produced:
            os.replace(p, out_dir / p.name)
            (out_dir / p.name).chmod(0o644)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _companions(name: str, fmt: str) -> list[str]:
    """Every file one recording consists of (BrainVision: header, marker and data file)."""
    if fmt == "brainvision":
        stem = name[: -len(".vhdr")]
        return [name, f"{stem}.vmrk", f"{stem}.eeg"]
    return [name]


def _check_out_dir(out_dir: Path, names: set[str]) -> None:
    """Refuse a folder holding other files: a stale recording not in the new table would be a bad dataset."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: found a file; expected a folder (new, empty, or written before "
                          "with the same settings)")
    other = sorted(p.name for p in out_dir.iterdir() if p.name not in names and not is_temp_name(p.name))
    if other:
        raise ConfigError(f"--out {out_dir}: found {len(other)} other entries ({', '.join(other[:3])}"
                          f"{', …' if len(other) > 3 else ''}); expected a new or empty folder, or one written "
                          "before with the same settings (the trials table must describe every file)")


def trials_table_text(rows: list[TrialRow]) -> str:
    """The trials table: tab-separated, one header line, times in seconds with 3 decimals, ratings 2."""
    lines = ["\t".join(TABLE_COLUMNS)]
    for r in rows:
        lines.append("\t".join([r.subject, r.file, f"{r.onset:.3f}", f"{r.duration:.3f}", r.stimulus,
                                f"{r.baseline_onset:.3f}", f"{r.baseline_duration:.3f}",
                                *(f"{x:.2f}" for x in r.ratings)]))
    return "\n".join(lines) + "\n"


def dataset_file(
    fmt: str, names: tuple[str, ...], peripheral: str, baseline_seconds: float, min_trial_s: float,
) -> dict:
    """The dataset file (issue 10 §1) as a mapping: a facts file of the schema of ``data/datasets/*.yaml``
    (:class:`physiosync.data.facts.DatasetFacts`) with its ``recordings`` section.

    Units are those of what ``mne.io.read_raw`` returns for the file (MNE's SI volts; the GSR as in the
    module docstring); the reader scales them to µV / µS.
    """
    modalities: dict = {"eeg": {"role": "eeg", "kind": "eeg", "ch_names": list(names), "unit": "V"}}
    if peripheral == "gsr":
        modalities["gsr"] = {"role": "peripheral", "kind": "gsr", "ch_names": ["GSR"], "unit": _GSR_AS[fmt][2]}
    elif peripheral == "ecg":
        modalities["ecg"] = {"role": "peripheral", "kind": "ecg", "ch_names": ["ECG"], "unit": "V"}
    doc: dict = {
        "name": "synthetic-recordings",
        "modalities": modalities,
        "target_sfreq": WORKING_SFREQ,
        "baseline_layout": "separate",  # the table's baseline_onset/baseline_duration per trial
        "baseline_s": float(baseline_seconds),
        "stimulus_s": float(np.floor(min_trial_s)),  # shortest trial, whole seconds
        "stimulus_segment": "first",  # longer trials (vary_trial_length) are cropped to their first stimulus_s
        "default_resolutions": [1.0, 5.0] if min_trial_s >= 5.0 and np.floor(min_trial_s) % 5 == 0 else [1.0],
        "ratings": list(RATINGS),
        "rating_scale": list(RATING_SCALE),
        # high <=> rating >= 5 on the 1..9 scale, as DEAP's self-assessments (one threshold per rating)
        "thresholds": {r: THRESHOLD for r in RATINGS},
        "tasks": {
            "arousal": {"kind": "threshold", "columns": ["arousal"]},
            "valence": {"kind": "threshold", "columns": ["valence"]},
            "four": {"kind": "quadrants", "columns": ["arousal", "valence"],
                     "class_names": ["HAHV", "HALV", "LAHV", "LALV"]},
            "dominance": {"kind": "threshold", "columns": ["dominance"]},
            "liking": {"kind": "threshold", "columns": ["liking"]},
        },
        "recordings": {"trials_table": TABLE_NAME, "trials_from": "table",
                       "read_raw": {"infer_types": fmt in ("edf", "bdf")}},
    }
    if peripheral != "none":
        doc["peripheral_norm"] = "subject"
    return doc


def _dataset_file_text(doc: dict) -> str:
    import yaml

    head = ("# Dataset file of a synthetic own-recordings folder written by `physiosync synth recordings`:\n"
            "# the facts-file schema of data/datasets/*.yaml plus a `recordings` section (docs/datasets.md).\n")
    return head + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, allow_unicode=True)


def _validate(fmt: str, peripheral: str, n_subjects: int, n_trials: int, files_per_subject: int,
              sfreq: tuple[float, ...], trial_seconds: float, baseline_seconds: float, montage: str,
              effect: float) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"recordings: format {fmt!r}; expected one of {', '.join(FORMATS)} "
                          "(GDF: MNE reads it but cannot write it)")
    if peripheral not in PERIPHERALS:
        raise ConfigError(f"recordings: peripheral {peripheral!r}; expected one of {', '.join(PERIPHERALS)}")
    if montage not in MONTAGES:
        raise ConfigError(f"recordings: montage {montage!r}; expected one of {', '.join(MONTAGES)}")
    if n_subjects < 1 or n_trials < 1:
        raise ConfigError(f"recordings: {n_subjects} subjects x {n_trials} trials; expected at least 1 x 1")
    if not 1 <= files_per_subject <= n_trials:
        raise ConfigError(f"recordings: files per subject {files_per_subject}; expected 1..{n_trials} "
                          "(every file holds at least one trial)")
    for hz in sfreq:
        if not (hz >= 2 * 64 and float(hz).is_integer() and int(hz) % 2 == 0):
            raise ConfigError(f"recordings: sampling rate {hz:g} Hz; expected an even whole number of Hz "
                              ">= 128 (table times lie on a 0.5 s grid; the EEG extends to 45 Hz)")
    for key, value, low in (("trial seconds", trial_seconds, 1.0), ("baseline seconds", baseline_seconds, 1.0)):
        if not (value >= low and float(value / GRID_S).is_integer()):
            raise ConfigError(f"recordings: {key} {value:g}; expected a multiple of {GRID_S:g} s, >= {low:g} s")
    if effect < 0:
        raise ConfigError(f"recordings: effect {effect:g}; expected >= 0")


@dataclass(frozen=True)
class RecordingsSpec:
    """Every setting of a synthetic own-recordings dataset (see :func:`write_synthetic_recordings`)."""

    format: str = "edf"
    n_subjects: int = 4
    n_trials: int = 8
    seed: int = 0
    effect: float = 1.0
    peripheral: str = "gsr"
    sfreq: tuple[float, ...] = (256.0,)
    files_per_subject: int = 1
    trial_seconds: float = 60.0
    vary_trial_length: bool = False
    baseline_seconds: float = 3.0
    montage: str = "biosemi32"

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first setting out of range."""
        if not self.sfreq:
            raise ConfigError("recordings: no sampling rate given; expected at least one")
        _validate(self.format, self.peripheral, self.n_subjects, self.n_trials, self.files_per_subject,
                  self.sfreq, self.trial_seconds, self.baseline_seconds, self.montage, self.effect)

    def layout(self) -> list[FileLayout]:
        durations = stimulus_durations(self.seed, self.n_trials, self.trial_seconds, self.vary_trial_length)
        return make_layout(self.seed, self.n_subjects, self.n_trials, self.files_per_subject, self.sfreq,
                           durations, self.baseline_seconds, FORMATS[self.format])


def iter_recordings(spec: RecordingsSpec) -> Iterator[tuple[FileLayout, mne.io.RawArray, list[TrialRow]]]:
    """Generate the recordings one file at a time (subject-major), as float64 ``mne.io.RawArray``.

    What the writer exports; tests compare what the real readers return with these objects. Each
    subject's signals come from its own (seed, subject) generator, drawn file by file in table order.
    """
    spec.validate()
    names = MONTAGES[spec.montage]
    layout = spec.layout()
    for s in range(1, spec.n_subjects + 1):
        ratings = make_deap_ratings(spec.seed, s, spec.n_trials)  # indexed by stimulus
        rng = sig.make_generator(spec.seed, sig.STREAM_SIGNAL, s)
        eeg_params = sig.draw_eeg_params(rng, len(names), _mask(names, ("P", "O")))
        per_params = (sig.draw_gsr_params(rng) if spec.peripheral == "gsr"
                      else sig.draw_ecg_params(rng, 1) if spec.peripheral == "ecg" else None)
        for f in (f for f in layout if f.subject == s):
            eeg, per, rows = _make_file_signals(rng, f, eeg_params, per_params, spec.peripheral, names, ratings,
                                                spec.effect, spec.seed, spec.baseline_seconds)
            yield f, _make_raw(f, spec.format, names, eeg, per, spec.peripheral, rows), rows


def write_synthetic_recordings(
    out_dir: str | Path,
    format: Format = "edf",
    n_subjects: int = 4,
    n_trials: int = 8,
    seed: int = 0,
    effect: float = 1.0,
    peripheral: Peripheral = "gsr",
    sfreq: float | tuple[float, ...] = 256.0,
    files_per_subject: int = 1,
    trial_seconds: float = 60.0,
    vary_trial_length: bool = False,
    baseline_seconds: float = 3.0,
    montage: str = "biosemi32",
) -> WrittenRecordings:
    """Write recordings of ``n_subjects`` subjects in ``format``, ``trials.tsv`` and ``dataset.yaml``.

    Args:
        out_dir: Target folder (created); it must be new, empty, or written before with the same settings.
        format: ``edf``, ``bdf``, ``fif``, ``brainvision`` or ``eeglab`` (what each keeps: module docstring).
        n_subjects: Subjects.
        n_trials: Stimuli; every subject sees each once, in a random order.
        seed: Dataset seed; the same seed gives byte-identical files, table and dataset file.
        effect: Scale of every label-dependent effect; 0 gives recordings with no label information.
        peripheral: ``gsr``, ``ecg`` or ``none`` (EEG only).
        sfreq: Sampling rate(s) in Hz, cycled over all files in subject-major order.
        files_per_subject: Runs per subject; the subject's trials are split over them in order.
        trial_seconds: Stimulus duration (with ``vary_trial_length``: the shortest; up to 1.5×).
        vary_trial_length: Draw per-stimulus durations in [trial_seconds, 1.5 trial_seconds].
        baseline_seconds: Pre-stimulus baseline before every trial.
        montage: ``biosemi32`` (DEAP's 32 channels) or ``epoc14`` (DREAMER's 14).

    Returns:
        The files in table order, the table and dataset-file paths, and the table rows.
    """
    rates = (float(sfreq),) if np.isscalar(sfreq) else tuple(float(x) for x in sfreq)  # type: ignore[union-attr]
    spec = RecordingsSpec(format=format, n_subjects=n_subjects, n_trials=n_trials, seed=seed, effect=effect,
                          peripheral=peripheral, sfreq=rates, files_per_subject=files_per_subject,
                          trial_seconds=float(trial_seconds), vary_trial_length=vary_trial_length,
                          baseline_seconds=float(baseline_seconds), montage=montage)
    spec.validate()
    out_dir = Path(out_dir)
    layout = spec.layout()
    expected = {TABLE_NAME, DATASET_NAME} | {n for f in layout for n in _companions(f.name, format)}
    clean_stale_temps(out_dir)  # temp folders a killed earlier write left behind
    _check_out_dir(out_dir, expected)
    out_dir.mkdir(parents=True, exist_ok=True)

    rows: list[TrialRow] = []
    files: list[Path] = []
    for f, raw, file_rows in iter_recordings(spec):
        _write_recording(out_dir, raw, format, f.name)
        rows += file_rows
        files.append(out_dir / f.name)
    table = out_dir / TABLE_NAME
    dataset = out_dir / DATASET_NAME
    min_trial_s = min(d for f in layout for d in f.durations_s)
    write_text_atomic(table, trials_table_text(rows))
    write_text_atomic(dataset, _dataset_file_text(
        dataset_file(format, MONTAGES[montage], peripheral, spec.baseline_seconds, min_trial_s)))
    for p in (table, dataset):
        p.chmod(0o644)
    return WrittenRecordings(files=files, table=table, dataset_file=dataset, rows=rows)
