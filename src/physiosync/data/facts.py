"""Dataset facts files (``datasets/<name>.yaml``): their typed schema, the one loader, and the prepared contract.

A facts file says what a dataset *is* — channels and rates, how baselines are laid out, how long a
stimulus is, which rating columns exist, which of the authors' quirk switches can apply to it, how a trial
is named in error messages, the paper's published numbers for it — so that preprocessing, labels and
reports branch on facts, never on a dataset name. Each fact carries a comment with its source in the file.

Why a strict schema: issue 10 lets users write such a file for their own recordings, and a misspelt key
or a wrong type must then be an error naming the file and the key (like the run config, ``config.py``),
not a silently ignored line. Every facts file is read through :func:`load_facts_file`; the shipped ones
through :func:`dataset_facts` (validated once, cached). This module imports no other part of physiosync at
import time (``config`` imports it).
"""

from __future__ import annotations

import copy
import re
import string
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError, model_validator

from physiosync.data.contract import DataContract, ModalitySpec
from physiosync.errors import ConfigError, shorten

PREPARED_SFREQ = 128.0  # every modality is stored at 128 Hz after preprocessing (method-spec §1–§2)

# The quirk switches of ``PreprocessConfig`` (method-spec §7) a facts file may declare as applicable.
QuirkName = Literal["deap_four_tie_bug", "dreamer_ecg_from_eeg_bug", "dreamer_baseline_bug", "dreamer_window_bug"]
# Quirks that rewrite the separate-baseline path (segmenting, per-clip templates, the ECG branch).
SEPARATE_BASELINE_QUIRKS = ("dreamer_ecg_from_eeg_bug", "dreamer_baseline_bug", "dreamer_window_bug")
# Placeholders of ``trial_source`` (string.Template syntax: ``${subject}``).
TRIAL_SOURCE_FIELDS = ("subject", "trial", "mod", "MOD")


def _not_bool(v: Any) -> Any:
    if isinstance(v, bool):
        raise ValueError("expected a number, not a boolean")
    return v


Float = Annotated[float, BeforeValidator(_not_bool)]
PositiveFloat = Annotated[float, BeforeValidator(_not_bool), Field(gt=0)]
Count = Annotated[int, Strict(), Field(ge=1)]
Index = Annotated[int, Strict(), Field(ge=0)]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=200)]


class FactsModel(BaseModel):
    """Base of every facts section: unknown keys are errors, no coercion of bools/strings, finite floats."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# Units a modality's values may be declared in (``unit``), with the factor to the working unit of their
# kind: voltages -> µV, conductances -> µS; "n/a" (or no unit) leaves values as read.
UNIT_SCALE: dict[str, float] = {
    "V": 1e6, "mV": 1e3, "uV": 1.0, "µV": 1.0, "nV": 1e-3,
    "S": 1e6, "mS": 1e3, "uS": 1.0, "µS": 1.0, "n/a": 1.0,
}
UnitName = Literal["V", "mV", "uV", "µV", "nV", "S", "mS", "uS", "µS", "n/a"]


class ModalityFacts(FactsModel):
    """One modality as recorded: its channels by name (``ch_names``) or by a regex (``pattern``)."""

    role: Literal["eeg", "peripheral"]
    # native sampling rate; preprocessing resamples to target_sfreq where it differs. None = each file's own
    # rate (own recordings: files may differ)
    sfreq: PositiveFloat | None = None
    # channel names in array order; own recordings may give ``pattern`` instead (a regular expression every
    # wanted channel name matches in full; the channels are then those of the first file, in its order)
    ch_names: Annotated[list[Name], Field(min_length=1)] | None = None
    pattern: Name | None = None
    kind: Name | None = None  # what the signal is: eeg, gsr, ecg, ppg, resp, … (reports, documentation)
    unit: UnitName | None = None  # unit of the values as read; scaled to µV (voltages) / µS (conductances)
    # Rows of this modality in a file holding all channels in one array (first, last; inclusive), if any
    channel_indices: tuple[Index, Index] | None = None

    @model_validator(mode="after")
    def _channels(self) -> ModalityFacts:
        if (self.ch_names is None) == (self.pattern is None):
            raise ValueError("give exactly one of ch_names (a list of names) and pattern (a regular expression)")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise ValueError(f"pattern is not a regular expression ({e})") from None
        return self

    @property
    def scale(self) -> float:
        """Factor from the declared unit to the working unit (1 without a unit)."""
        return UNIT_SCALE[self.unit] if self.unit is not None else 1.0


class AnnotationTrial(FactsModel):
    """What one annotation description means (``trials_from: annotations``)."""

    stimulus: Name | None = None  # stimulus id (default: the description itself)
    ratings: dict[Name, Float] = Field(default_factory=dict)  # one value per rating of the dataset


class ReadRawOptions(FactsModel):
    """Options passed to ``mne.io.read_raw`` (only those that change what a file's channels are called)."""

    infer_types: Annotated[bool, Strict()] = False  # EDF/BDF/GDF: "EEG Fp1" -> channel Fp1 of type eeg


class RecordingsFacts(FactsModel):
    """Own recordings (``dataset.name: recordings``): where the trials are and how files are opened."""

    trials_table: Name = "trials.tsv"  # relative to the dataset file (docs/datasets.md: its columns)
    # "table": one table row per trial (onset, duration, …); "annotations": the table lists the files
    # (subject, file) and trials are the files' annotations whose description ``annotations`` maps
    trials_from: Literal["table", "annotations"] = "table"
    annotations: dict[Name, AnnotationTrial] | None = None
    read_raw: ReadRawOptions = Field(default_factory=ReadRawOptions)

    @model_validator(mode="after")
    def _annotations(self) -> RecordingsFacts:
        if self.trials_from == "annotations" and not self.annotations:
            raise ValueError("trials_from 'annotations' needs an annotations mapping (description -> "
                             "{stimulus, ratings})")
        if self.trials_from == "table" and self.annotations is not None:
            raise ValueError("annotations is only read with trials_from 'annotations'")
        return self


class PaperRow(FactsModel):
    """One method's row of a published table: values per column as (mean, std), std or value may be null."""

    method: Name
    modalities: Name | None = None
    starred: Annotated[bool, Strict()] = False  # printed with "*" in the table (no legend)
    values: list[tuple[Float, Float | None] | None]


class PaperTable(FactsModel):
    """A published result table (percent)."""

    title: Name
    columns: Annotated[list[Name], Field(min_length=1)]  # "<label>_acc" / "<label>_f1"
    rows: Annotated[list[PaperRow], Field(min_length=1)]

    @model_validator(mode="after")
    def _widths(self) -> PaperTable:
        for r in self.rows:
            if len(r.values) != len(self.columns):
                raise ValueError(f"row {r.method!r} has {len(r.values)} values for {len(self.columns)} columns")
        return self


class PaperResults(FactsModel):
    """The paper's tables for this dataset: ``dependent`` (subject-dependent) and ``cross`` (cross-subject)."""

    source: Name
    dependent: PaperTable | None = None
    cross: PaperTable | None = None


class DatasetFacts(FactsModel):
    """What a dataset is (see the module docstring); one facts file."""

    name: Name
    n_subjects: Count | None = None  # None: as many as the files hold (own recordings)
    n_trials: Count | None = None
    # Reader-specific layout of a file holding every channel of a subject in one array (DEAP)
    n_channels_file: Count | None = None
    n_samples_file: Count | None = None
    # seconds of baseline per trial; own recordings: None = as the trials table says (baseline_duration)
    baseline_s: PositiveFloat | None = None
    stimulus_s: PositiveFloat  # seconds of stimulus kept per trial
    target_sfreq: PositiveFloat = PREPARED_SFREQ  # every modality is brought to this rate
    # "prefix": the baseline is the first baseline_s of every trial array (one template per trial);
    # "separate": each trial has its own baseline recording, of any length (per-clip template);
    # "none": no baseline is subtracted (own recordings without a baseline segment).
    baseline_layout: Literal["none", "prefix", "separate"]
    # "whole": every stimulus is exactly stimulus_s long; "first_or_last": stimuli are longer and
    # ``preprocess.dreamer_segment`` picks their first or last stimulus_s; "first" / "last": stimuli may
    # be longer (own recordings of varying length) and this part of each is kept.
    stimulus_segment: Literal["whole", "first_or_last", "first", "last"]
    modalities: Annotated[dict[Name, ModalityFacts], Field(min_length=1)]
    ratings: Annotated[list[Name], Field(min_length=1)]
    rating_scale: tuple[Float, Float]
    thresholds: dict[Name, Float]
    default_resolutions: Annotated[list[PositiveFloat], Field(min_length=1)]
    peripheral_norm: Literal["none", "trial", "subject"] = "subject"
    quirks: list[QuirkName] = Field(default_factory=list)  # the quirk switches that can change this dataset
    trial_noun: Name = "trial"  # what a trial is called in messages ("clip")
    # Where trial k's stimulus array of a modality sits in the source, for error messages, as a
    # string.Template over ${subject} (number), ${trial} (1-based), ${mod}, ${MOD}; None = "trial k signal['mod']"
    trial_source: Name | None = None
    paper_results: PaperResults | None = None
    tasks: dict[Name, Any] | None = None  # label tasks (issue 9 §3; validated by the labels module)
    recordings: RecordingsFacts | None = None  # own recordings only (``dataset.name: recordings``)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetFacts:
        lo, hi = self.rating_scale
        if not lo < hi:
            raise ValueError(f"rating_scale must be [low, high] with low < high (got [{lo:g}, {hi:g}])")
        roles = [m.role for m in self.modalities.values()]
        # PhysioSync pairs one EEG with one peripheral signal; own recordings may be EEG-only (run without
        # CM-CA, the EEG-only fusion), a shipped dataset's reader expects both
        if self.recordings is not None and sorted(roles) not in (["eeg"], ["eeg", "peripheral"]):
            raise ValueError(f"modalities need one role 'eeg' and at most one role 'peripheral' (got {roles})")
        if self.recordings is None and sorted(roles) != ["eeg", "peripheral"]:
            raise ValueError(f"modalities need one role 'eeg' and one role 'peripheral' (got {roles}; EEG-only "
                             "data: own recordings, with a 'recordings' section)")
        for key in self.thresholds:
            if key not in self.ratings:
                raise ValueError(f"thresholds.{key}: not one of the ratings {self.ratings}")
        if self.baseline_layout == "prefix" and self.baseline_s is None:
            raise ValueError("baseline_layout 'prefix' needs baseline_s (the seconds of baseline per trial)")
        if self.baseline_layout != "separate":
            bad = [q for q in self.quirks if q in SEPARATE_BASELINE_QUIRKS]
            if bad:
                raise ValueError(f"quirks {bad} rewrite the separate-baseline path; baseline_layout is "
                                 f"{self.baseline_layout!r}")
        if self.recordings is None:
            unnamed = [m for m, f in self.modalities.items() if f.ch_names is None or f.sfreq is None]
            if unnamed:
                raise ValueError(f"modalities {unnamed} lack sfreq or ch_names, which a facts file without a "
                                 "'recordings' section needs (a dataset file of own recordings has one)")
        if self.baseline_layout == "prefix":
            bad = [q for q in self.quirks if q in SEPARATE_BASELINE_QUIRKS]
            if bad:
                raise ValueError(f"quirks {bad} rewrite the separate-baseline path; baseline_layout is 'prefix'")
            rates = {m: f.sfreq for m, f in self.modalities.items() if f.sfreq != self.target_sfreq}
            if rates:
                raise ValueError(f"baseline_layout 'prefix' needs every modality at target_sfreq (got {rates})")
        if self.trial_source is not None:
            try:
                string.Template(self.trial_source).substitute({k: "1" for k in TRIAL_SOURCE_FIELDS})
            except (KeyError, ValueError) as e:
                raise ValueError(f"trial_source: bad placeholder {e} (allowed: "
                                 f"{', '.join('${' + k + '}' for k in TRIAL_SOURCE_FIELDS)})") from None
        return self

    # ------------------------------------------------------------------ derived facts

    @property
    def eeg(self) -> str:
        """Name of the EEG-role modality."""
        return next(m for m, f in self.modalities.items() if f.role == "eeg")

    @property
    def peripheral(self) -> str | None:
        """Name of the peripheral-role modality (None for EEG-only data)."""
        return next((m for m, f in self.modalities.items() if f.role == "peripheral"), None)

    def samples(self, seconds: float) -> int:
        """Samples of ``seconds`` at the prepared rate."""
        return int(round(seconds * self.target_sfreq))

    def trial_source_name(self, subject: str, k: int, mod: str) -> str:
        """Where 0-based trial ``k``'s stimulus array of ``mod`` is in the source (error messages)."""
        if self.trial_source is not None and subject[1:].isdigit():
            return string.Template(self.trial_source).substitute(
                subject=int(subject[1:]), trial=k + 1, mod=mod, MOD=mod.upper())
        return f"trial {k} signal[{mod!r}]"

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every fact (the form ``load_dataset_facts`` returns)."""
        return self.model_dump(mode="python")


def _location(loc: tuple[Any, ...]) -> str:
    return shorten(".".join(str(p) for p in loc) or "<root>", 120)


def format_facts_error(err: ValidationError, source: str, max_errors: int = 3) -> str:
    """One line naming the facts file, each bad key, what was wrong and the value found."""
    parts = []
    errors = err.errors()
    for e in errors[:max_errors]:
        key = _location(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            parts.append(f"{source}: unknown key {key!r}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            # a whole-file check's input is the whole file: the message says what is wrong, no echo
            got = "" if not e["loc"] else f" (got {shorten(repr(e.get('input')), 120)})"
            parts.append(f"{source}: key {key!r}: {msg}{got}")
    if len(errors) > max_errors:
        parts.append(f"and {len(errors) - max_errors} more error(s)")
    return "; ".join(parts)


def parse_facts(data: Any, source: str) -> DatasetFacts:
    """Validate a parsed facts mapping; errors name ``source`` and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping of dataset facts, found {type(data).__name__}")
    try:
        return DatasetFacts.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_facts_error(e, source)) from None


def load_facts_file(path: str | Path) -> DatasetFacts:
    """Read and validate one facts file (strict YAML: no duplicate keys or aliases, as config files).

    Raises:
        ConfigError: unreadable or invalid YAML, an unknown key, a wrong type or inconsistent facts,
            naming the file and the key.
    """
    from physiosync.config import read_yaml  # config imports this module; its YAML reader is the strict one

    path = Path(path)
    return parse_facts(read_yaml(path), str(path))


def facts_names() -> list[str]:
    """Names of the shipped facts files (``datasets/*.yaml``)."""
    root = resources.files("physiosync") / "data" / "datasets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


@cache
def dataset_facts(name: str) -> DatasetFacts:
    """The validated facts of a shipped dataset (read once per process).

    Raises:
        ConfigError: no facts file of that name (listing the available ones), or an invalid file.
    """
    if not isinstance(name, str) or name not in facts_names():  # also keeps "../x" inside the package
        raise ConfigError(f"no dataset facts for {shorten(repr(name), 80)}; available: {', '.join(facts_names())}")
    with resources.as_file(resources.files("physiosync") / "data" / "datasets" / f"{name}.yaml") as f:
        facts = load_facts_file(f)
    if facts.name != name:
        raise ConfigError(f"{name}.yaml: key 'name': {facts.name!r} differs from the file name {name!r}")
    return facts


def load_dataset_facts(name: str) -> dict[str, Any]:
    """The facts of a shipped dataset as a plain dict (a copy; :func:`dataset_facts` is the typed form)."""
    return copy.deepcopy(dataset_facts(name).to_dict())


def prepared_contract(name: str | DatasetFacts, window_s: tuple[float, ...] = (1.0, 5.0)) -> DataContract:
    """The :class:`DataContract` of a dataset *after* preprocessing (all modalities at 128 Hz).

    Used by ``describe-model`` (no data needed) and written into cache manifests. ``name`` may be the
    facts themselves (own recordings: a dataset file, channel patterns resolved by its reader).
    """
    facts = dataset_facts(name) if isinstance(name, str) else name
    unresolved = [mod for mod, spec in facts.modalities.items() if spec.ch_names is None]
    if unresolved:
        raise ConfigError(f"dataset {facts.name!r}: modalities {unresolved} name their channels by a pattern; "
                          "the contract needs them resolved against a recording (physiosync.data.readers.facts_of)")
    mods = tuple(
        ModalitySpec(name=mod, role=spec.role, ch_names=tuple(spec.ch_names or ()), sfreq=facts.target_sfreq)
        for mod, spec in facts.modalities.items()
    )
    return DataContract(modalities=mods, window_s=tuple(window_s))


__all__ = [
    "UNIT_SCALE", "AnnotationTrial", "DatasetFacts", "ModalityFacts", "ReadRawOptions", "RecordingsFacts", "PaperResults", "PaperTable", "QuirkName", "dataset_facts", "facts_names",
    "load_dataset_facts", "load_facts_file", "parse_facts", "prepared_contract",
]
