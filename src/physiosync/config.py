"""One typed configuration schema for every stage, loaded from YAML with ``--set key=value`` overrides.

Defaults live here and nowhere else. Unknown keys, wrong types and out-of-range values are errors naming
the key (and the file or ``--set`` it came from); overrides are parsed as YAML scalars and validated by the
same schema. Types are strict where coercion would hide a mistake (``seed: true`` is not 1, ``2.5`` is not
a count); floats must be finite; sizes, counts and rates have ranges. YAML is read with a loader that
refuses duplicate keys and aliases (see :class:`StrictYAMLLoader`). Presets
(``smoke``, ``demo``, ``cpu``, ``paper``) are YAML overlays shipped in ``physiosync/presets``; the resolved
config is saved with every run. Dataset *facts* (channels, rates, thresholds) are not configuration: they
live in ``physiosync/data/datasets/<name>.yaml`` and are read with :func:`physiosync.data.facts.dataset_facts`.

Fields documented as ``None = dataset default`` (``model.resolutions``, ``preprocess.peripheral_norm``,
``preprocess.thresholds``) and the label ``tasks`` (the facts' ``tasks:`` with the config's over them) are
filled from those facts by :func:`resolve_config`, the one place that knows them. Every entry point (``run_pipeline``, ``compare``, ``describe-model``; ``build_cache`` through
``resolve_plan``) resolves the config it is given before any stage sees it, so every stage, every
``compare`` row and the ``config.yaml`` of a run directory see the same, explicit values. Loading does *not* resolve: a loaded config may still
have its dataset changed (``prepare --dataset``, ``describe-model --dataset``) before it is used.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from fractions import Fraction
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)

from physiosync.data.facts import DatasetFacts, dataset_facts
from physiosync.data.facts import load_dataset_facts as load_dataset_facts  # re-exported (former home)
from physiosync.errors import ConfigError, shorten

TaskKind = Literal["threshold", "quadrants", "categorical"]
ProtocolName = Literal["paper", "stimulus-kfold", "subject-trial-kfold", "loso", "subject-kfold"]

# Upper bounds are guards against typos and overflow (torch takes C ints), far above any useful value.
MAX_WIDTH = 1 << 16  # embedding / projector / classifier widths (the paper's widest layer: 4096)
MAX_COUNT = 2**31 - 1  # epochs, steps, batch sizes, folds (C int range)
CONFIG_MAX_BYTES = 1 << 20  # a config file is a few hundred bytes; 1 MiB is generous


class KeyedValueError(ValueError):
    """A cross-field check failed: ``key`` (relative to the section) is the key to blame, ``value`` its value.

    Why: a model-level validator's error is located at the whole section by pydantic; carrying the key lets
    :func:`format_validation_error` name the offending key and echo only its value.
    """

    def __init__(self, key: str, value: object, message: str) -> None:
        self.key, self.value = key, value
        super().__init__(message)


def _not_bool(v: Any) -> Any:
    # pydantic's lax float/str modes take True as 1.0 / refuse it inconsistently; a boolean where a
    # number is expected is always a mistake (e.g. `lr: yes`).
    if isinstance(v, bool):
        raise ValueError("expected a number, not a boolean")
    return v


def _path_ok(v: Any) -> Any:
    # Checked on the raw value: Path("") silently becomes ".", and a NUL byte fails only at the first open.
    if isinstance(v, str):
        if "\x00" in v:
            raise ValueError("a path cannot contain a NUL byte")
        if not v.strip():
            raise ValueError("an empty path")
    return v


# Strict ints: YAML already yields ints for `3`; strictness refuses `true`, `2.5` and `"3"`. Floats stay
# lax for strings because PyYAML reads `1e-3` (no dot) as a string, and `--set finetune.lr=1e-3` must work.
Count = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT)]  # at least one
Width = Annotated[int, Strict(), Field(ge=1, le=MAX_WIDTH)]
Float = Annotated[float, BeforeValidator(_not_bool)]  # finite: see StrictModel.allow_inf_nan
PositiveFloat = Annotated[float, BeforeValidator(_not_bool), Field(gt=0)]
NonNegFloat = Annotated[float, BeforeValidator(_not_bool), Field(ge=0)]
Probability = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, lt=1)]  # dropout, held-out shares
Bool = Annotated[bool, Strict()]  # YAML true/false; not 1, "yes" strings or 0
PathValue = Annotated[Path, BeforeValidator(_path_ok)]


def _unique(v: list[Any]) -> list[Any]:
    # A repeated label, fold, subject or window would run (or count) the same thing twice.
    seen: set[Any] = set()
    dupes: set[str] = set()
    for x in v:
        if x in seen:
            dupes.add(repr(x))
        seen.add(x)
    if dupes:
        dupes = sorted(dupes)  # type: ignore[assignment]
        raise ValueError(f"duplicate entries {shorten(', '.join(dupes), 120)}")
    return v


def _run_name(v: str) -> str:
    # The name is a directory under runs_dir: one path component, printable, not "." or "..".
    if not v or len(v) > 200 or v in (".", "..") or any(c in v for c in "/\\") or not v.isprintable():
        raise ValueError("must be a directory name: 1-200 printable characters, no '/' or '\\', not '.' or '..'")
    return v


def registered_datasets() -> list[str]:
    """Names of the datasets with a reader (``physiosync.data.readers.READERS``), sorted."""
    from physiosync.data.readers import READERS  # readers import this module: looked up at validation time

    return sorted(READERS)


def _dataset_name(v: str) -> str:
    # Any registered dataset (a reader + a facts file), not a fixed list: adding a dataset adds a reader.
    if v not in registered_datasets():
        raise ValueError(f"unknown dataset; registered: {', '.join(registered_datasets())}")
    return v


DatasetName = Annotated[str, Strict(), AfterValidator(_dataset_name)]
_TASK_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def _task_name(v: str) -> str:
    # A task name becomes part of file names (predictions_fold0_<task>.csv, finetune/<task>/): keep it a
    # plain lower-case identifier.
    if not _TASK_NAME_RE.fullmatch(v):
        raise ValueError("a task name is 1-40 characters of a-z, 0-9 and '_', starting with a letter")
    return v


def _class_name(v: str) -> str:
    if not v.strip() or len(v) > 40 or not v.isprintable():
        raise ValueError("a class name is 1-40 printable characters")
    return v


TaskName = Annotated[str, Strict(), AfterValidator(_task_name)]
ClassName = Annotated[str, Strict(), AfterValidator(_class_name)]


def _preset_name(v: str) -> str:
    if v not in list_presets():
        raise ValueError(f"unknown preset; available: {', '.join(list_presets())}")
    return v


_DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d{1,4})?")


def _device_name(v: str) -> str:
    # Availability is checked when the device is used (physiosync.training.runtime.resolve_device): a run made on a
    # GPU machine keeps a loadable config elsewhere.
    if not _DEVICE_RE.fullmatch(v):
        raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
    return v


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated, floats are finite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class DatasetConfig(StrictModel):
    """Which dataset and where its raw files are."""

    name: DatasetName = "deap"
    data_dir: PathValue | None = None
    format: Literal["auto", "python", "matlab"] = "auto"  # DEAP only: sNN.dat pickles or sNN.mat
    # e.g. ["s01", "s02"] (or 1, "s1"); None = all found
    subjects: Annotated[list[str], Field(min_length=1), AfterValidator(_unique)] | None = None
    # What the files are, stated in reports next to every number: ``release`` = the official DEAP / DREAMER
    # files (only then does a report print the paper's published table beside ours), ``user`` = your own
    # recordings or any other data in that layout, ``synthetic`` = written by ``physiosync synth``. Default
    # ``user``: a wrong "these are the official data" claim is worse than a missing table.
    origin: Literal["release", "user", "synthetic"] = "user"
    # Own recordings (``name: recordings``): the dataset file (docs/datasets.md); None = data_dir/dataset.yaml
    file: PathValue | None = None

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

    @field_validator("subjects", mode="before")
    @classmethod
    def _subject_ids(cls, v: Any) -> Any:
        """Subject ids as the readers accept them (``s01``, ``s1``, ``1``), checked before any file is read."""
        if not isinstance(v, list):
            return v
        out = []
        for s in v:
            if isinstance(s, bool) or not isinstance(s, (str, int)):
                raise ValueError(f"subject ids are strings like 's01' (got {shorten(repr(s), 60)})")
            text = str(s).strip().lower()
            digits = text[1:] if text.startswith("s") else text
            if not (digits.isascii() and digits.isdigit()) or int(digits) < 1:
                raise ValueError(f"not a subject id: {shorten(repr(s), 60)} (expected e.g. 's01')")
            out.append(f"s{int(digits):02d}")
        return out


class PreprocessConfig(StrictModel):
    """Preprocessing options (method-spec §2). Quirk flags default to ``official``; ``None`` = follow it."""

    official: Bool = False  # one switch for all data-changing quirks of the authors' code (§7)
    deap_four_tie_bug: Bool | None = None  # D8: ties at rating 5 relabelled LALV
    dreamer_ecg_from_eeg_bug: Bool | None = None  # D1: "ECG" = EEG AF3/F7 minus ECG template, 2-value z-score
    dreamer_baseline_bug: Bool | None = None  # D3: running, never-reset baseline accumulator
    dreamer_window_bug: Bool | None = None  # D13: duplicated first window, last second dropped
    dreamer_segment: Literal["first", "last"] = "first"  # which 60 s of each DREAMER clip
    peripheral_norm: Literal["none", "trial", "subject"] | None = None  # None = dataset default
    # per rating column: high <=> rating >= threshold. None = dataset default (the facts' ``thresholds``:
    # DEAP 5, DREAMER 3 for every rating); given entries replace the facts' one by one. Keys must be rating
    # columns of the dataset and values lie inside its rating scale (checked by RunConfig).
    thresholds: dict[str, Float] | None = None

    def quirk(self, name: str) -> bool:
        """Resolved value of a quirk flag: its own value if set, otherwise ``official``."""
        value = getattr(self, name)
        return self.official if value is None else bool(value)


class ModelConfig(StrictModel):
    """Encoder, projector and classifier sizes (method-spec §3). Never dataset-specific."""

    # d per window length (s); keys "1.0", "1" or 1 (matched by value); every d divisible by n_heads
    embed_dim: dict[str, Width] = Field(default_factory=lambda: {"1.0": 128, "5.0": 640})
    depth: Annotated[int, Strict(), Field(ge=1, le=256)] = 3
    n_heads: Width = 4
    n_views: Width = 3
    mlp_ratio: PositiveFloat = 4.0
    n_prompts: Annotated[int, Strict(), Field(ge=0, le=MAX_WIDTH)] = 2  # prompt tokens per block, EEG only
    eeg_token_dropout: Probability = 0.2
    layer_scale_init: Float = 0.1
    projector_dims: Annotated[list[Width], Field(min_length=1, max_length=64)] = Field(
        default_factory=lambda: [1024, 2048, 4096])
    projector_dropout: Probability = 0.2
    projector_dropout_in_eval: Bool = False  # D12 (authors: always active)
    cm_dim: Width = 1024  # shared cross-modal head width
    classifier_hidden: Annotated[list[Width], Field(max_length=64)] = Field(default_factory=lambda: [256, 128])
    classifier_dropout: Probability = 0.2
    # window lengths (s) fused by the classifier; None = dataset default. Checked against the dataset's
    # trial length by RunConfig and against the prepared cache by the pipeline.
    resolutions: Annotated[list[PositiveFloat], Field(min_length=1, max_length=16), AfterValidator(_unique)] | None = None
    fusion: Literal["cross-modal", "eeg-only"] = "cross-modal"
    confidence_weighting: Bool = True
    parity: Bool = False  # D20: create the unused modules of the authors' code (parameter-count parity)
    # Fine-tuning: BatchNorm statistics of the 1 s slices of a 5 s sample, per slice (authors) or pooled
    slice_batchnorm: Literal["per-slice", "pooled"] = "per-slice"

    def pretrain_view(self) -> dict[str, Any]:
        """The fields that shape a pre-training (fine-tuning-only keys left out).

        Why: rows of ``compare`` that differ only in the classifier (fusion, resolutions, confidence, …)
        share one pre-training; its key and its resume check must both ignore those keys.
        """
        return self.model_dump(mode="json", exclude=set(FINETUNE_ONLY_MODEL_KEYS))

    @field_validator("embed_dim", mode="before")
    @classmethod
    def _window_keys(cls, v: Any) -> Any:
        """Keys are window lengths written ``1``, ``"1"`` or ``"1.0"``; stored as ``"1.0"``.

        Why canonical keys: layers are merged key by key, so a file's ``{1: 16}`` must replace a preset's
        ``{"1.0": 128}`` rather than sit beside it; of two spellings of one window the later one wins.
        """
        if not isinstance(v, dict):
            return v
        out: dict[str, Any] = {}
        for key, dim in v.items():
            try:
                if isinstance(key, bool):
                    raise ValueError
                w = float(key)
            except (TypeError, ValueError):
                raise ValueError(f"key {shorten(repr(key), 60)} is not a window length in seconds") from None
            if not (math.isfinite(w) and w > 0):
                raise ValueError(f"key {shorten(repr(key), 60)} is not a positive window length")
            out[str(w)] = dim  # a later spelling replaces the value, in the first spelling's place
        if not out:
            raise ValueError("needs at least one window length")
        return out

    @model_validator(mode="after")
    def _shapes_fit(self) -> ModelConfig:
        """Cross-field shape rules the modules would otherwise fail on deep inside torch."""
        for key, dim in self.embed_dim.items():
            if dim % self.n_heads:
                raise KeyedValueError("n_heads", self.n_heads,
                                      f"must divide every embed_dim; embed_dim[{key!r}] = {dim} is not divisible")
            if int(dim * self.mlp_ratio) < 1:
                raise KeyedValueError("mlp_ratio", self.mlp_ratio, f"gives an empty MLP for embed_dim {dim}")
            if int(dim * self.mlp_ratio) > MAX_WIDTH * 16:
                raise KeyedValueError("mlp_ratio", self.mlp_ratio, f"gives an MLP wider than {MAX_WIDTH * 16}")
        for r in self.resolutions or []:
            if embed_dim_for(self.embed_dim, r) is None:
                raise KeyedValueError("resolutions", self.resolutions,
                                      f"{r:g} s has no model.embed_dim entry (keys: {', '.join(self.embed_dim)})")
        return self


FINETUNE_ONLY_MODEL_KEYS = (
    "classifier_hidden", "classifier_dropout", "resolutions", "fusion", "confidence_weighting", "slice_batchnorm"
)


class AugmentConfig(StrictModel):
    """On-the-fly augmentation for pre-training (method-spec §4.4)."""

    enabled: Bool = True
    scale_low: tuple[PositiveFloat, PositiveFloat] = (0.7, 0.8)  # (low, high) of U(·)
    scale_high: tuple[PositiveFloat, PositiveFloat] = (1.2, 1.3)
    snr_db: Float = 5.0

    @model_validator(mode="after")
    def _ranges_ordered(self) -> AugmentConfig:
        for key in ("scale_low", "scale_high"):
            lo, hi = getattr(self, key)
            if lo > hi:
                raise KeyedValueError(key, [lo, hi], "must be [low, high] with low <= high")
        return self


class PretrainConfig(StrictModel):
    """Contrastive pre-training (LS-TCL + CM-CA), one run per fold and resolution."""

    enabled: Bool = True  # false = fine-tune from random encoders (the no-pretrain ablation)
    epochs: Count = 500
    # stimulus moments per step (groups) or samples (augviews/official); >= 2: NT-Xent needs negatives
    batch_size: Annotated[int, Strict(), Field(ge=2, le=MAX_COUNT)] = 8
    lr: PositiveFloat = 7e-4
    weight_decay: NonNegFloat = 1e-3
    temperature: PositiveFloat = 0.1
    n_group_subjects: Count = 2  # N subjects max-pooled per group
    pairing: Literal["groups", "augviews", "official"] = "groups"
    temporal: Bool = True  # ablation: False drops the temporal (TCL) terms
    cross_modal: Bool = True  # ablation: False drops the CM-CA terms (not both: RunConfig checks)
    w_temporal: NonNegFloat = 1.0  # weight of each NT-Xent temporal term (EEG, PPS)
    w_cross_modal: NonNegFloat = 1.0  # weight of each NT-Xent CM-CA term (two swaps)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    val_fraction: Probability = 0.1  # monitoring split carved from the training part of a fold
    steps_per_epoch: Count | None = None  # cap (None = one pass over the training moments)
    keep_checkpoint: Bool = False  # keep the resume checkpoint.pt of a finished pre-training (debugging)


class FinetuneConfig(StrictModel):
    """Supervised fine-tuning of all encoders + fusion classifier (method-spec §5.1)."""

    epochs: Count = 6  # >= 1: zero epochs would report an untrained model
    batch_size: Annotated[int, Strict(), Field(ge=2, le=MAX_COUNT)] = 256  # >= 2: BatchNorm in training mode
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegFloat = 0.0
    t0: Count | None = None  # cosine warm restarts period in epochs; None = max(1, epochs // 3)
    steps_per_epoch: Count | None = None
    keep_checkpoint: Bool = False  # keep the resume checkpoint.pt of a finished fold (debugging)


class ProtocolConfig(StrictModel):
    """Fold construction (evaluation-protocols.md §2)."""

    name: ProtocolName = "stimulus-kfold"
    n_folds: Annotated[int, Strict(), Field(ge=2, le=MAX_COUNT)] | None = None  # None = protocol default
    official: Bool = False  # `paper` only: the authors' exact folds (seeded shuffle, mismatched 1 s folds)
    # run only these folds (e.g. for a quick look or cluster fan-out); checked against the folds made
    folds: Annotated[list[Annotated[int, Strict(), Field(ge=0, le=MAX_COUNT)]], Field(min_length=1),
                     AfterValidator(_unique)] | None = None


QUADRANT_DEFAULT_CLASS_NAMES = ("HH", "HL", "LH", "LL")


class TaskConfig(StrictModel):
    """One label task (a ``tasks:`` entry of the config or of a dataset facts file).

    Why a schema of its own: a task decides the integer labels stored in the cache, so a typo in it must be
    an error naming the key, never a silently different label. Kinds:

    - ``threshold``: one rating column, class 1 (``high``) ⇔ rating ≥ its threshold
      (``preprocess.thresholds``, per rating); class names default to ``[low, high]``.
    - ``quadrants``: two rating columns ``[first, second]``, each split at its threshold; class index
      ``2·low(first) + low(second)``, so with ``[arousal, valence]`` the classes are HAHV, HALV, LAHV, LALV
      (the default names are ``HH, HL, LH, LL``). The D8 quirk (``deap_four_tie_bug``) applies to it.
    - ``categorical``: one column whose values map to classes, ``classes: {name: [values]}`` in class-index
      order (e.g. DREAMER dominance ``{low: [1, 2], mid: [3], high: [4, 5]}``); a value outside every class
      is a data error when the cache is built.
    """

    kind: TaskKind
    columns: Annotated[list[Annotated[str, Strict()]], Field(min_length=1, max_length=2), AfterValidator(_unique)]
    class_names: Annotated[list[ClassName], Field(min_length=2, max_length=256), AfterValidator(_unique)] | None = None
    classes: Annotated[dict[ClassName, Annotated[list[Float], Field(min_length=1)]],
                       Field(min_length=2, max_length=256)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_class_names(cls, data: Any) -> Any:
        """Fill ``class_names`` from the kind (threshold, quadrants) or from ``classes`` (categorical), so a
        resolved task always states its class names and resolving twice gives the same task."""
        if not isinstance(data, dict) or data.get("class_names") is not None:
            return data
        kind, classes = data.get("kind"), data.get("classes")
        if kind == "threshold":
            return {**data, "class_names": ["low", "high"]}
        if kind == "quadrants":
            return {**data, "class_names": list(QUADRANT_DEFAULT_CLASS_NAMES)}
        if kind == "categorical" and isinstance(classes, dict):
            return {**data, "class_names": [str(k) for k in classes]}
        return data

    @model_validator(mode="after")
    def _shape_fits_kind(self) -> TaskConfig:
        want = {"threshold": (1, 2), "quadrants": (2, 4), "categorical": (1, None)}
        n_cols, n_classes = want[self.kind]
        if len(self.columns) != n_cols:
            raise KeyedValueError("columns", self.columns, f"a {self.kind} task reads exactly {n_cols} column(s)")
        if self.kind == "categorical":
            if self.classes is None:
                raise KeyedValueError("classes", None, "a categorical task needs classes: {class name: [values]}")
            if self.class_names != list(self.classes):
                raise KeyedValueError("class_names", self.class_names,
                                      f"must equal the names of classes ({', '.join(self.classes)}) or be left out")
            seen: dict[float, str] = {}
            for name, values in self.classes.items():
                for v in values:
                    if v in seen:
                        raise KeyedValueError("classes", self.classes,
                                              f"value {v:g} belongs to both {seen[v]!r} and {name!r}")
                    seen[v] = name
        else:
            if self.classes is not None:
                raise KeyedValueError("classes", self.classes, f"only categorical tasks map values (kind is {self.kind})")
            if len(self.class_names or []) != n_classes:
                raise KeyedValueError("class_names", self.class_names, f"a {self.kind} task has {n_classes} classes")
        return self
class JobResources(StrictModel):
    """What one job asks the executor for (Ray: ``num_cpus`` / ``num_gpus`` of its task; local: ignored)."""

    cpus: Annotated[float, Strict(), Field(gt=0, le=1024)] = 1.0
    gpus: Annotated[float, Strict(), Field(ge=0, le=64)] = 0.0  # fractional: 0.25 = four jobs share a GPU


def _default_resources() -> dict[str, JobResources]:
    return {"pretrain": JobResources(), "finetune": JobResources(), "baseline": JobResources()}


class ExecutorConfig(StrictModel):
    """Where the jobs of ``run`` / ``compare`` execute (:mod:`physiosync.experiments.executors`).

    Runtime settings (they may change between calls of one run: a run started locally can be resumed on
    Ray and back). ``local`` runs the jobs in this process, in order, stopping at the first error (the
    behaviour before jobs existed); ``ray`` connects to ``address`` (default: the ``RAY_ADDRESS``
    environment variable, else a local instance is started), retries a failed job ``retries`` times and
    then reports it with its error while the other jobs go on.
    """

    name: Literal["local", "ray"] = "local"
    address: str | None = None
    retries: Annotated[int, Strict(), Field(ge=0, le=100)] = 2
    # per job kind: pretrain, finetune (fine-tuning + prediction), baseline (one baseline row, fold, task)
    resources: dict[Literal["pretrain", "finetune", "baseline"], JobResources] = Field(
        default_factory=_default_resources)


class RunConfig(StrictModel):
    """Everything a run needs; saved resolved in ``runs/<name>/config.yaml``."""

    name: Annotated[str, AfterValidator(_run_name)] = "run"  # a directory name under runs_dir
    preset: Annotated[str, AfterValidator(_preset_name)] | None = None  # the preset this config was built on
    seed: Annotated[int, Strict(), Field(ge=0, le=2**63 - 1)] = 0  # numpy and torch seeds are unsigned 64-bit
    device: Annotated[str, AfterValidator(_device_name)] = "auto"  # auto | cpu | cuda | cuda:1 | mps
    # auto = bf16 where the hardware runs it fast (CPU AMX / AVX512-BF16, CUDA with bf16), fp32 elsewhere;
    # a run saves and reports the resolved value (physiosync.training.runtime.resolve_precision).
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    n_threads: Annotated[int, Strict(), Field(ge=1, le=1024)] | None = None
    # label tasks to fine-tune and report, by name: the dataset's tasks (its facts file) and ``tasks`` below
    labels: Annotated[list[TaskName], Field(min_length=1), AfterValidator(_unique)] = Field(
        default_factory=lambda: ["arousal", "valence", "four"])
    # Label tasks added to (or replacing, by name) the dataset facts' tasks; resolved (all tasks listed) by
    # resolve_config. Every task defined here is a label column of the cache, so it is part of its hash.
    tasks: dict[TaskName, TaskConfig] = Field(default_factory=dict)
    cache_dir: PathValue = Path("cache")
    runs_dir: PathValue = Path("runs")
    # Where pre-trained encoders are kept (None = <run>/pretrain). Pre-trainings are keyed by everything
    # that determines them (split, window, encoder/pre-training config, seed, cache), so runs that point at
    # one store (e.g. the rows of `compare`) share them safely.
    pretrain_store: PathValue | None = None
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    # Run the whole grid once per seed (seed-specific run directories ``<run>/seed<k>/``, results over
    # seeds); None = one run with ``seed`` in ``<run>/`` itself (the layout without seeds).
    seeds: Annotated[list[Annotated[int, Strict(), Field(ge=0, le=2**63 - 1)]], Field(min_length=1, max_length=1000),
                     AfterValidator(_unique)] | None = None
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)

    @model_validator(mode="after")
    def _fits_dataset(self) -> RunConfig:
        """Rules across sections or needing the dataset facts: thresholds inside the rating scale, windows
        that tile a trial, an embedding width for every fused window, ``official`` folds only for ``paper``,
        something for pre-training to optimise. (Here rather than in the sections, which the modules that
        take a section alone re-check with their own ConfigError.)"""
        from physiosync.data.readers import facts_of  # readers import this module

        facts = facts_of(self.dataset, required=False)
        if facts is None:  # own recordings whose dataset file is not named yet: checked when it is read
            return self._fits_any_dataset()
        lo, hi = facts.rating_scale
        ratings = dataset_ratings(facts)
        for name, t in (self.preprocess.thresholds or {}).items():
            if name not in ratings:
                raise KeyedValueError(f"preprocess.thresholds.{name}", t,
                                      f"is not a {self.dataset.name} rating column; expected one of {', '.join(ratings)}")
            if not lo < t <= hi:
                raise KeyedValueError(f"preprocess.thresholds.{name}", t,
                                      f"must lie in ({lo:g}, {hi:g}], the {self.dataset.name} rating scale")
        resolutions = self.model.resolutions
        if resolutions is None:
            resolutions = dataset_defaults(facts)["resolutions"]
            for r in resolutions:
                if embed_dim_for(self.model.embed_dim, r) is None:
                    raise KeyedValueError("model.embed_dim", self.model.embed_dim,
                                          f"has no entry for the {r:g} s window {self.dataset.name} fuses by default")
        sfreq = facts.target_sfreq
        problem = window_problem(resolutions, n_samples=facts.samples(facts.stimulus_s), sfreq=sfreq)
        if problem:
            raise KeyedValueError("model.resolutions", self.model.resolutions, problem)
        task_defs = dataset_task_configs(facts)
        for name, task in self.tasks.items():
            bad = [c for c in task.columns if c not in ratings]
            if bad:
                raise KeyedValueError(f"tasks.{name}.columns", task.columns,
                                      f"{', '.join(bad)} is not a {self.dataset.name} rating column; expected "
                                      f"some of {', '.join(ratings)}")
        available = [*task_defs, *(t for t in self.tasks if t not in task_defs)]
        unknown = [lab for lab in self.labels if lab not in available]
        if unknown:
            raise KeyedValueError("labels", self.labels, _unknown_tasks_message(unknown, self.dataset.name, available))
        return self._fits_any_dataset()

    def _fits_any_dataset(self) -> RunConfig:
        """The cross-section rules that need no dataset facts."""
        if self.protocol.official and self.protocol.name != "paper":
            raise KeyedValueError("protocol.official", True,
                                  f"applies to the `paper` protocol only (protocol.name is {self.protocol.name!r})")
        if self.pretrain.enabled and not (self.pretrain.temporal or self.pretrain.cross_modal):
            raise KeyedValueError("pretrain.cross_modal", False,
                                  "pretrain.temporal and pretrain.cross_modal are both false: nothing to optimise "
                                  "(use pretrain.enabled=false to skip pre-training)")
        return self


def embed_dim_for(embed_dim: dict[str, int], window_s: float) -> int | None:
    """The width configured for a window length (keys matched by value: "1", "1.0"), or None."""
    for key, dim in embed_dim.items():
        try:
            if abs(float(key) - float(window_s)) < 1e-9:
                return int(dim)
        except (TypeError, ValueError):
            continue
    return None


def window_problem(resolutions: list[float], n_samples: int, sfreq: float) -> str | None:
    """Why these window lengths cannot be cut from trials of ``n_samples`` at ``sfreq`` (None = they can).

    Each window must be a whole number of samples that tiles the trial, and every window must tile the
    longest one (the classifier slices the shorter resolutions out of the longest window).
    """
    trial_s = n_samples / sfreq
    sizes = {}
    for r in resolutions:
        n = Fraction(str(r)) * Fraction(str(sfreq))
        if n.denominator != 1 or n < 1:
            return f"a {r:g} s window is not a whole number of samples at {sfreq:g} Hz"
        if int(n) > n_samples or n_samples % int(n):
            return f"a {r:g} s window does not tile a {trial_s:g} s trial ({n_samples} samples at {sfreq:g} Hz)"
        sizes[r] = int(n)
    longest = max(sizes, key=sizes.__getitem__)
    for r, n in sizes.items():
        if sizes[longest] % n:
            return f"a {r:g} s window does not tile the longest ({longest:g} s) window"
    return None


# --------------------------------------------------------------------------------------------------
# loading, merging, overrides


class StrictYAMLLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate mapping keys, aliases/anchors and merge keys.

    Why refuse duplicates: PyYAML keeps the last of two equal keys silently, so a pasted second ``model:``
    section would replace the first without a word. Why refuse aliases outright rather than bound the
    expanded size: a config file has no need for them (``--set`` and presets cover reuse), and refusing
    them at the first ``&``/``*`` event is a check that cannot be out-witted, where a size bound has to be
    enforced on every later consumer of the expanded object (a 280-byte alias bomb expands to a 226 MB
    list). Merge keys (``<<``) only make sense with aliases and are refused with them.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            kind = "alias" if isinstance(event, yaml.AliasEvent) else "anchor"
            raise yaml.composer.ComposerError(
                None, None, f"YAML {kind} {shorten(event.anchor, 40)!r} found; aliases and anchors are not "
                "allowed in config files (write the value out)", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:  # noqa: D102
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise yaml.constructor.ConstructorError(
                        None, None, "merge keys ('<<') are not allowed in config files", key_node.start_mark)
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable key: the base class reports it
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {shorten(repr(key), 80)} (first at line {first.line + 1})",
                        key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """One line for a YAML error: ``line L, column C: problem`` (PyYAML's own text spans several lines)."""
    if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
        mark = e.problem_mark
        what = "; ".join(x for x in (e.context, e.problem) if x)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    return " ".join(str(e).split())


def parse_yaml_text(text: str) -> Any:
    """Parse YAML with :class:`StrictYAMLLoader`; :class:`yaml.YAMLError` or :class:`RecursionError` escape."""
    return yaml.load(text, Loader=StrictYAMLLoader)  # noqa: S506 (a SafeLoader subclass)


def _model_at(loc: tuple[Any, ...], root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The config section class at a location (from ``root``, default :class:`RunConfig`), or None where the
    location is not a section."""
    model: type[BaseModel] = root or RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        ann = field.annotation if field is not None else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    return model


def format_validation_error(
    err: ValidationError, source: str | Callable[[tuple[str, ...]], str], max_errors: int = 3,
    root: type[BaseModel] | None = None,
) -> str:
    """One line naming the source (file, preset or ``--set``), each bad key, what was wrong and the value.

    ``source`` is a name, or a function from a key path to the name of the layer that set it. Echoed
    values are shortened (:func:`physiosync.errors.shorten`); at most ``max_errors`` are listed. ``root``: the
    model that was validated (default :class:`RunConfig`), for the "expected one of" hint of unknown keys.
    """
    parts = []
    errors = err.errors()
    for e in errors[:max_errors]:
        loc = tuple(str(p) for p in e["loc"])
        problem = e.get("ctx", {}).get("error")
        if isinstance(problem, KeyedValueError):
            loc = (*loc, *problem.key.split("."))
        key = shorten(".".join(loc) or "<root>", 120)
        where = source(loc) if callable(source) else source
        if e["type"] == "extra_forbidden":
            section = _model_at(loc[:-1], root)
            hint = f"; expected one of: {', '.join(section.model_fields)}" if section is not None else ""
            parts.append(f"{where}: unknown key {key!r}{hint}")
        elif isinstance(problem, KeyedValueError):
            parts.append(f"{where}: key {key!r}: {problem} (got {shorten(repr(problem.value), 120)})")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: key {key!r}: {msg} (got {shorten(repr(e.get('input')), 120)})")
    if len(errors) > max_errors:
        parts.append(f"and {len(errors) - max_errors} more error(s)")
    return "; ".join(parts)


_format_validation_error = format_validation_error  # former private name


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
    """Read a YAML mapping, with one-line errors that name the file (and line) and what was expected."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{path}: is a directory; expected a YAML config file")
        with path.open("rb") as f:
            raw = f.read(CONFIG_MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read the config file (permission denied)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror or e})") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise ConfigError(f"{path}: larger than {CONFIG_MAX_BYTES} bytes; expected a YAML config file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start}); "
                          "save the config as UTF-8") from None
    try:
        data = parse_yaml_text(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of config keys, found {type(data).__name__}")
    return data


def parse_override(item: str) -> dict[str, Any]:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}`` with ``value`` parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {shorten(item, 120)!r}: expected key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {shorten(item, 120)!r}: malformed key {shorten(key, 120)!r}; expected e.g. "
                          "finetune.epochs=3")
    try:
        value = parse_yaml_text(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {shorten(item, 120)!r}: value is not valid YAML: {_yaml_problem(e)}") from None
    except RecursionError:
        raise ConfigError(f"--set {shorten(item, 120)!r}: value is not valid YAML: nested too deeply") from None
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
    if not isinstance(name, str) or name not in list_presets():  # also keeps "../x" inside the package
        raise ConfigError(f"unknown preset {shorten(repr(name), 80)}; available: {', '.join(list_presets())}")
    f = resources.files("physiosync") / "presets" / f"{name}.yaml"
    data = parse_yaml_text(f.read_text()) or {}
    return data


def validate_config(data: dict[str, Any], source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, source)) from None


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    preset: str | None = None,
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Build a :class:`RunConfig` from (in order) ``base``, a preset, a YAML file and ``--set`` overrides.

    A YAML file may name a preset itself with a top-level ``preset: NAME`` key; a ``preset`` argument
    (``--preset`` on the command line) replaces it. The merged result is validated once (so that keys that
    constrain each other, e.g. ``model.resolutions`` and ``model.embed_dim``, can be changed by separate
    ``--set``); each error names the layer (preset, file or ``--set``) that last set the offending key.
    """
    data: dict[str, Any] = copy.deepcopy(base or {})
    layers: list[tuple[str, dict[str, Any]]] = [("<base config>", data)] if base else []
    file_data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        file_data = read_yaml(path)
        source = str(path)
        file_preset = file_data.pop("preset", None)
        if file_preset is not None and (not isinstance(file_preset, str) or file_preset not in list_presets()):
            raise ConfigError(f"{path}: key 'preset': unknown preset {shorten(repr(file_preset), 80)}; "
                              f"available: {', '.join(list_presets())}")
        preset = preset or file_preset  # a preset named on the command line wins over the file's
    if preset:
        overlay = {**preset_dict(preset), "preset": preset}
        data = deep_merge(data, overlay)
        layers.append((f"preset {preset!r}", overlay))
    if file_data:
        data = deep_merge(data, file_data)
        layers.append((source, file_data))
    for item in overrides or []:
        overlay = parse_override(item)
        data = deep_merge(data, overlay)
        layers.append((f"--set {shorten(item, 120)}", overlay))
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, lambda loc: _layer_of(layers, loc, source))) from None


def _layer_of(layers: list[tuple[str, dict[str, Any]]], loc: tuple[str, ...], default: str) -> str:
    """The layer that set (the deepest matching prefix of) the key at ``loc``; later layers win ties."""
    best, best_depth = default, 0
    for name, overlay in layers:
        node: Any = overlay
        depth = 0
        for part in loc:
            if not isinstance(node, dict):
                break
            match = next((k for k in node if str(k) == part), _MISSING)
            if match is _MISSING:
                break
            node, depth = node[match], depth + 1
        if depth and depth >= best_depth:
            best, best_depth = name, depth
    return best


_MISSING = object()


def dump_config(cfg: RunConfig) -> str:
    """YAML text of a resolved config (paths as strings), suitable for ``load_config``."""
    return yaml.dump(cfg.model_dump(mode="json"), Dumper=_NoAliasDumper, sort_keys=False)


class _NoAliasDumper(yaml.SafeDumper):
    """Never writes anchors/aliases (the loader refuses them), even for a value that appears twice."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: D102
        return True


# --------------------------------------------------------------------------------------------------
# dataset defaults: the one place where ``None = dataset default`` fields are filled


def dataset_defaults(name: str | DatasetFacts) -> dict[str, Any]:
    """The configuration defaults a dataset's facts file sets (``resolutions``, ``peripheral_norm``,
    ``thresholds`` per rating), as :func:`resolve_config` applies them (tasks: :func:`resolve_tasks`).
    ``name``: a shipped dataset, or facts read from a dataset file (own recordings,
    :func:`physiosync.data.readers.facts_of`)."""
    facts = _as_facts(name)
    return {
        "resolutions": sorted({float(w) for w in facts.default_resolutions}),
        "peripheral_norm": str(facts.peripheral_norm),
        "thresholds": {str(k): float(v) for k, v in facts.thresholds.items()},
    }


def _as_facts(dataset: str | DatasetFacts) -> DatasetFacts:
    """A shipped dataset's facts by name, or facts already read (an own-recordings dataset file)."""
    return dataset_facts(dataset) if isinstance(dataset, str) else dataset


def dataset_ratings(dataset: str | DatasetFacts) -> list[str]:
    """The rating columns of a dataset (its facts' ``ratings``), in file order; every one is stored in the
    cache and may be read by a label task."""
    return [str(r) for r in _as_facts(dataset).ratings]


@cache
def _shipped_facts_tasks(name: str) -> dict[str, TaskConfig]:
    return _facts_tasks(dataset_facts(name), f"physiosync/data/datasets/{name}.yaml")


def _facts_tasks(facts: DatasetFacts, where: str) -> dict[str, TaskConfig]:
    raw = facts.tasks or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: key 'tasks': expected a mapping of task name -> definition")
    out: dict[str, TaskConfig] = {}
    for task_name, spec in raw.items():
        try:
            _task_name(str(task_name))
            out[str(task_name)] = TaskConfig.model_validate(spec)
        except (ValidationError, ValueError) as e:
            msg = (format_validation_error(e, where, root=TaskConfig) if isinstance(e, ValidationError)
                   else f"{where}: {e}")
            raise ConfigError(f"{msg} (task {task_name!r})") from None
    return out


def dataset_task_configs(dataset: str | DatasetFacts) -> dict[str, TaskConfig]:
    """The label tasks a dataset's facts (or own-recordings dataset file) define (``tasks:``), in file order."""
    if isinstance(dataset, str):
        tasks = _shipped_facts_tasks(dataset)  # validated once per shipped file
    else:
        tasks = _facts_tasks(dataset, f"dataset file of {dataset.name!r}")
    return {k: v.model_copy(deep=True) for k, v in tasks.items()}


def _unknown_tasks_message(unknown: list[str], dataset: str, available: list[str]) -> str:
    return (f"unknown label task(s) {', '.join(unknown)}; {dataset} defines {', '.join(available)} "
            "(add a task under `tasks:` in the config to define another)")


def resolve_tasks(dataset: str | DatasetFacts, tasks: dict[str, TaskConfig] | None = None) -> dict[str, TaskConfig]:
    """Every label task of a run: the dataset facts' tasks with the config's ``tasks`` over them, by name.

    Order: the facts' tasks in file order (a config task of the same name takes its place), then the
    config's other tasks in their order. Idempotent (a resolved mapping resolves to itself).

    Raises:
        ConfigError: a task reads a column that is not a rating of the dataset, or a threshold/quadrants
            task reads a rating without a threshold in the facts.
    """
    facts = _as_facts(dataset)
    name = facts.name
    given = dict(tasks or {})
    out = {task: given.pop(task, t) for task, t in dataset_task_configs(dataset).items()}
    out.update(given)
    ratings = dataset_ratings(facts)
    with_threshold = set(facts.thresholds or {})
    for task, t in out.items():
        bad = [c for c in t.columns if c not in ratings]
        if bad:
            raise ConfigError(f"tasks.{task}.columns: found {bad}; expected rating columns of {name} "
                              f"({', '.join(ratings)})")
        missing = [c for c in t.columns if t.kind != "categorical" and c not in with_threshold]
        if missing:
            raise ConfigError(f"tasks.{task}: {name} facts give no threshold for {missing}; expected a "
                              "`thresholds` entry for every rating a threshold/quadrants task reads")
    return {task: t.model_copy(deep=True) for task, t in out.items()}


def resolve_preprocess(dataset: str | DatasetFacts, cfg: PreprocessConfig) -> PreprocessConfig:
    """``cfg`` with its dataset defaults filled for ``dataset`` (a new object; idempotent).

    ``peripheral_norm=None`` follows the dataset facts, except under ``official`` where it is ``none`` (the
    authors never normalise GSR, D23). ``thresholds`` are the facts' thresholds with the config's entries
    over them, so a partial ``{arousal: 6}`` keeps the dataset's valence threshold. Quirk flags are not
    dataset defaults (``None`` follows ``official``, see :meth:`PreprocessConfig.quirk`) and stay as they are.
    """
    d = dataset_defaults(dataset)
    norm = cfg.peripheral_norm
    if norm is None:
        norm = "none" if cfg.official else d["peripheral_norm"]
    thresholds = dict(d["thresholds"])
    ratings = dataset_ratings(dataset)
    unknown = sorted(set(cfg.thresholds or {}) - set(ratings))
    if unknown:
        raise ConfigError(f"preprocess.thresholds: found {unknown}; expected rating columns of {dataset} "
                          f"({', '.join(ratings)})")
    thresholds.update({k: float(v) for k, v in (cfg.thresholds or {}).items()})
    return cfg.model_copy(update={"peripheral_norm": norm, "thresholds": thresholds}, deep=True)


def resolve_config(cfg: RunConfig) -> RunConfig:
    """A copy of ``cfg`` with every ``None = dataset default`` field filled from the dataset facts.

    Why one function: when each stage filled its own defaults, ``compare`` and the pipeline disagreed (on
    DREAMER the baseline rows ran on the cache's 5 s windows while the PhysioSync row used the dataset's
    1 s default), and a run directory's saved, filled config never equalled the unfilled one given again.
    Resolving once, before anything runs, and saving the result makes every consumer read the same values.

    Filled: ``model.resolutions`` (the facts' ``default_resolutions``; a given list is normalised to sorted,
    distinct floats), ``preprocess.peripheral_norm`` and ``preprocess.thresholds``
    (:func:`resolve_preprocess`), and ``tasks`` (every label task: the facts' with the config's over them,
    :func:`resolve_tasks`), against which ``labels`` is checked. Idempotent, so a resolved config (e.g. a run's saved ``config.yaml``)
    resolves to itself. Data-dependent defaults (``protocol.n_folds``, ``dataset.subjects``) cannot be known
    before the data are read and stay with the code that reads them (``make_folds`` records the fold count
    in ``folds.json``).

    Raises:
        ConfigError: ``model.resolutions`` is an empty list; a label is not a task of the dataset or the
            config; a task or threshold names a column the dataset does not have.
    """
    from physiosync.data.readers import facts_of  # readers import this module

    facts = facts_of(cfg.dataset)
    tasks = resolve_tasks(facts, cfg.tasks)
    unknown = [lab for lab in cfg.labels if lab not in tasks]
    if unknown:  # checked first: the assignments below re-validate the whole config
        raise ConfigError(f"labels: {_unknown_tasks_message(unknown, cfg.dataset.name, list(tasks))}")
    res = cfg.model.resolutions
    if res is None:
        res = dataset_defaults(facts)["resolutions"]
    elif not res:
        raise ConfigError("model.resolutions: found []; expected at least one window length in seconds, e.g. [1.0]")
    out = cfg.model_copy(deep=True)
    out.model = out.model.model_copy(update={"resolutions": sorted({float(w) for w in res})})
    out.preprocess = resolve_preprocess(facts, cfg.preprocess)
    out.tasks = tasks
    return out
