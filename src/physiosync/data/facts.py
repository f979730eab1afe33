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


class ModalityFacts(FactsModel):
    """One modality as recorded."""

    role: Literal["eeg", "peripheral"]
    sfreq: PositiveFloat  # native sampling rate; preprocessing resamples to target_sfreq where it differs
    ch_names: Annotated[list[Name], Field(min_length=1)]
    # Rows of this modality in a file holding all channels in one array (first, last; inclusive), if any
    channel_indices: tuple[Index, Index] | None = None


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
    n_subjects: Count
    n_trials: Count
    # Reader-specific layout of a file holding every channel of a subject in one array (DEAP)
    n_channels_file: Count | None = None
    n_samples_file: Count | None = None
    baseline_s: PositiveFloat
    stimulus_s: PositiveFloat  # seconds of stimulus kept per trial
    target_sfreq: PositiveFloat = PREPARED_SFREQ  # every modality is brought to this rate
    # "prefix": the baseline is the first baseline_s of every trial array (one template per trial);
    # "separate": each trial has its own baseline recording, of any length (per-clip template).
    baseline_layout: Literal["prefix", "separate"]
    # "whole": every stimulus is exactly stimulus_s long; "first_or_last": stimuli are longer and
    # ``preprocess.dreamer_segment`` picks their first or last stimulus_s.
    stimulus_segment: Literal["whole", "first_or_last"]
    modalities: Annotated[dict[Name, ModalityFacts], Field(min_length=1)]
    ratings: Annotated[list[Name], Field(min_length=1)]
    rating_scale: tuple[Float, Float]
    thresholds: dict[Name, Float]
    default_resolutions: Annotated[list[PositiveFloat], Field(min_length=1)]
    peripheral_norm: Literal["none", "trial", "subject"]
    quirks: list[QuirkName] = Field(default_factory=list)  # the quirk switches that can change this dataset
    trial_noun: Name = "trial"  # what a trial is called in messages ("clip")
    # Where trial k's stimulus array of a modality sits in the source, for error messages, as a
    # string.Template over ${subject} (number), ${trial} (1-based), ${mod}, ${MOD}; None = "trial k signal['mod']"
    trial_source: Name | None = None
    paper_results: PaperResults | None = None
    tasks: dict[Name, Any] | None = None  # label tasks (issue 9 §3; validated by the labels module)

    @model_validator(mode="after")
    def _consistent(self) -> DatasetFacts:
        lo, hi = self.rating_scale
        if not lo < hi:
            raise ValueError(f"rating_scale must be [low, high] with low < high (got [{lo:g}, {hi:g}])")
        roles = [m.role for m in self.modalities.values()]
        if sorted(roles) != ["eeg", "peripheral"]:  # PhysioSync pairs one EEG with one peripheral signal
            raise ValueError(f"modalities need one role 'eeg' and one role 'peripheral' (got {roles})")
        for key in self.thresholds:
            if key not in self.ratings:
                raise ValueError(f"thresholds.{key}: not one of the ratings {self.ratings}")
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
    def peripheral(self) -> str:
        """Name of the peripheral-role modality."""
        return next(m for m, f in self.modalities.items() if f.role == "peripheral")

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
            parts.append(f"{source}: key {key!r}: {msg} (got {shorten(repr(e.get('input')), 120)})")
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


def prepared_contract(name: str, window_s: tuple[float, ...] = (1.0, 5.0)) -> DataContract:
    """The :class:`DataContract` of a dataset *after* preprocessing (all modalities at 128 Hz).

    Used by ``describe-model`` (no data needed) and written into cache manifests.
    """
    facts = dataset_facts(name)
    mods = tuple(
        ModalitySpec(name=mod, role=spec.role, ch_names=tuple(spec.ch_names), sfreq=PREPARED_SFREQ)
        for mod, spec in facts.modalities.items()
    )
    return DataContract(modalities=mods, window_s=tuple(window_s))


__all__ = [
    "DatasetFacts", "ModalityFacts", "PaperResults", "PaperTable", "QuirkName", "dataset_facts", "facts_names",
    "load_dataset_facts", "load_facts_file", "parse_facts", "prepared_contract",
]
