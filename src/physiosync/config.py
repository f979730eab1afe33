"""One typed configuration schema for every stage, loaded from YAML with ``--set key=value`` overrides.

Defaults live here and nowhere else. Unknown keys and wrong types are errors naming the key (and the file
it came from); overrides are parsed as YAML scalars and validated by the same schema. Presets
(``smoke``, ``demo``, ``cpu``, ``paper``) are YAML overlays shipped in ``physiosync/presets``; the resolved
config is saved with every run. Dataset *facts* (channels, rates, thresholds) are not configuration: they
live in ``physiosync/datasets/<name>.yaml`` and are read with :func:`load_dataset_facts`.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from physiosync.errors import ConfigError

DatasetName = Literal["deap", "dreamer"]
LabelName = Literal["arousal", "valence", "four"]
ProtocolName = Literal["paper", "stimulus-kfold", "subject-trial-kfold", "loso", "subject-kfold"]


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatasetConfig(StrictModel):
    """Which dataset and where its raw files are."""

    name: DatasetName = "deap"
    data_dir: Path | None = None
    format: Literal["auto", "python", "matlab"] = "auto"  # DEAP only: sNN.dat pickles or sNN.mat
    subjects: list[str] | None = None  # e.g. ["s01", "s02"]; None = all found
    # What the files are, stated in reports next to every number: ``release`` = the official DEAP / DREAMER
    # files (only then does a report print the paper's published table beside ours), ``user`` = your own
    # recordings or any other data in that layout, ``synthetic`` = written by ``physiosync synth``. Default
    # ``user``: a wrong "these are the official data" claim is worse than a missing table.
    origin: Literal["release", "user", "synthetic"] = "user"

    @field_validator("origin", mode="before")
    @classmethod
    def _origin_not_real(cls, value: Any) -> Any:
        """Refuse the old value ``real``: it never said whether the data were the official release."""
        if value == "real":
            raise ValueError(
                "'real' is no longer accepted (it did not say whether these are the official files); expected "
                "'release' (the official DEAP/DREAMER files), 'user' (your own data in that layout) or 'synthetic'"
            )
        return value


class PreprocessConfig(StrictModel):
    """Preprocessing options (method-spec §2). Quirk flags default to ``official``; ``None`` = follow it."""

    official: bool = False  # one switch for all data-changing quirks of the authors' code (§7)
    deap_four_tie_bug: bool | None = None  # D8: ties at rating 5 relabelled LALV
    dreamer_ecg_from_eeg_bug: bool | None = None  # D1: "ECG" = EEG AF3/F7 minus ECG template, 2-value z-score
    dreamer_baseline_bug: bool | None = None  # D3: running, never-reset baseline accumulator
    dreamer_window_bug: bool | None = None  # D13: duplicated first window, last second dropped
    dreamer_segment: Literal["first", "last"] = "first"  # which 60 s of each DREAMER clip
    peripheral_norm: Literal["none", "trial", "subject"] | None = None  # None = dataset default
    thresholds: dict[str, float] | None = None  # None = dataset default (DEAP 5, DREAMER 3)

    def quirk(self, name: str) -> bool:
        """Resolved value of a quirk flag: its own value if set, otherwise ``official``."""
        value = getattr(self, name)
        return self.official if value is None else bool(value)


class ModelConfig(StrictModel):
    """Encoder, projector and classifier sizes (method-spec §3). Never dataset-specific."""

    embed_dim: dict[str, int] = Field(default_factory=lambda: {"1.0": 128, "5.0": 640})  # d per window (s)
    depth: int = 3
    n_heads: int = 4
    n_views: int = 3
    mlp_ratio: float = 4.0
    n_prompts: int = 2  # prompt tokens per block, EEG encoders only
    eeg_token_dropout: float = 0.2
    layer_scale_init: float = 0.1
    projector_dims: list[int] = Field(default_factory=lambda: [1024, 2048, 4096])
    projector_dropout: float = 0.2
    projector_dropout_in_eval: bool = False  # D12 (authors: always active)
    cm_dim: int = 1024  # shared cross-modal head width
    classifier_hidden: list[int] = Field(default_factory=lambda: [256, 128])
    classifier_dropout: float = 0.2
    resolutions: list[float] | None = None  # window lengths fused by the classifier; None = dataset default
    fusion: Literal["cross-modal", "eeg-only"] = "cross-modal"
    confidence_weighting: bool = True
    parity: bool = False  # D20: create the unused modules of the authors' code (parameter-count parity)


class AugmentConfig(StrictModel):
    """On-the-fly augmentation for pre-training (method-spec §4.4)."""

    enabled: bool = True
    scale_low: tuple[float, float] = (0.7, 0.8)
    scale_high: tuple[float, float] = (1.2, 1.3)
    snr_db: float = 5.0


class PretrainConfig(StrictModel):
    """Contrastive pre-training (LS-TCL + CM-CA), one run per fold and resolution."""

    enabled: bool = True
    epochs: int = 500
    batch_size: int = 8  # stimulus moments per step (groups) or samples (augviews/official)
    lr: float = 7e-4
    weight_decay: float = 1e-3
    temperature: float = 0.1
    n_group_subjects: int = 2  # N subjects max-pooled per group
    pairing: Literal["groups", "augviews", "official"] = "groups"
    temporal: bool = True  # ablation: False drops the temporal (TCL) terms
    cross_modal: bool = True  # ablation: False drops the CM-CA terms
    w_temporal: float = 1.0  # weight of each NT-Xent temporal term (EEG, PPS)
    w_cross_modal: float = 1.0  # weight of each NT-Xent CM-CA term (two swaps)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    val_fraction: float = 0.1  # monitoring split carved from the training part of a fold
    steps_per_epoch: int | None = None  # cap (None = one pass over the training moments)


class FinetuneConfig(StrictModel):
    """Supervised fine-tuning of all encoders + fusion classifier (method-spec §5.1)."""

    epochs: int = 6
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    t0: int | None = None  # cosine warm restarts period in epochs; None = max(1, epochs // 3)
    steps_per_epoch: int | None = None


class ProtocolConfig(StrictModel):
    """Fold construction (evaluation-protocols.md §2)."""

    name: ProtocolName = "stimulus-kfold"
    n_folds: int | None = None  # None = protocol default
    official: bool = False  # `paper` only: the authors' exact folds (seeded shuffle, mismatched 1 s folds)
    folds: list[int] | None = None  # run only these folds (e.g. for a quick look or cluster fan-out)


class RunConfig(StrictModel):
    """Everything a run needs; saved resolved in ``runs/<name>/config.yaml``."""

    name: str = "run"
    preset: str | None = None  # the preset this config was built on (recorded by load_config)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:1 | mps
    precision: Literal["fp32", "bf16"] = "fp32"
    n_threads: int | None = None
    labels: list[LabelName] = Field(default_factory=lambda: ["arousal", "valence", "four"])
    cache_dir: Path = Path("cache")
    runs_dir: Path = Path("runs")
    # Where pre-trained encoders are kept (None = <run>/pretrain). Pre-trainings are keyed by everything
    # that determines them (split, window, encoder/pre-training config, seed, cache), so runs that point at
    # one store (e.g. the rows of `compare`) share them safely.
    pretrain_store: Path | None = None
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)


# --------------------------------------------------------------------------------------------------
# loading, merging, overrides


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key {key!r}")
        else:
            lines.append(f"{source}: key {key!r}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively with ``overlay`` (dicts merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with errors that name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, found {type(data).__name__}")
    return data


def parse_override(item: str) -> dict[str, Any]:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}`` with ``value`` parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: malformed key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {e}") from None
    node: dict[str, Any] = {}
    cur = node
    parts = key.split(".")
    for p in parts[:-1]:
        cur[p] = {}
        cur = cur[p]
    cur[parts[-1]] = value
    return node


def list_presets() -> list[str]:
    root = resources.files("physiosync") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def preset_dict(name: str) -> dict[str, Any]:
    """The overlay of a shipped preset (``smoke``, ``demo``, ``cpu``, ``paper``)."""
    f = resources.files("physiosync") / "presets" / f"{name}.yaml"
    if not f.is_file():
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    data = yaml.safe_load(f.read_text()) or {}
    return data


def validate_config(data: dict[str, Any], source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, source)) from None


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    preset: str | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Build a :class:`RunConfig` from (in order) ``base``, a preset, a YAML file and ``--set`` overrides.

    A YAML file may name a preset itself with a top-level ``preset: NAME`` key; a ``preset`` argument
    (``--preset`` on the command line) replaces it. Each layer is validated
    on its own first so that an error names the layer (file or ``--set``) that introduced it.
    """
    data: dict[str, Any] = copy.deepcopy(base or {})
    file_data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        file_data = read_yaml(path)
        source = str(path)
        file_preset = file_data.pop("preset", None)
        preset = preset or file_preset  # a preset named on the command line wins over the file's
    if preset:
        data = deep_merge(data, preset_dict(preset))
        data["preset"] = preset
        validate_config(data, f"preset {preset!r}")
    if file_data:
        data = deep_merge(data, file_data)
        validate_config(data, source)
    for item in overrides or []:
        data = deep_merge(data, parse_override(item))
        validate_config(data, f"--set {item}")
    return validate_config(data, source)


def dump_config(cfg: RunConfig) -> str:
    """YAML text of a resolved config (paths as strings), suitable for ``load_config``."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


@cache
def _facts(name: str) -> dict[str, Any]:
    f = resources.files("physiosync") / "datasets" / f"{name}.yaml"
    if not f.is_file():
        raise ConfigError(f"no dataset facts for {name!r}")
    return yaml.safe_load(f.read_text())


def load_dataset_facts(name: str) -> dict[str, Any]:
    """Dataset facts (channels, rates, baseline seconds, rating scale, thresholds) with their source."""
    return copy.deepcopy(_facts(name))
