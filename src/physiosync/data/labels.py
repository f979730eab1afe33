"""Label tasks (method-spec §2.1 step 5, §2.3 step 5, D8, D27): per-trial ratings -> integer classes.

A :class:`Task` is defined in a dataset facts file or the config (``tasks:``, schema
:class:`physiosync.config.TaskConfig`) and is one of three kinds:

- ``threshold``: high (1) ⇔ rating ≥ the rating's threshold (DEAP 5 on the 1–9 scale, DREAMER 3 on 1–5;
  ``preprocess.thresholds`` overrides per rating), else low (0).
- ``quadrants``: two ratings ``(first, second)``, each split at its threshold; class index
  ``2·low(first) + low(second)``. DEAP's and DREAMER's ``four`` reads (arousal, valence), which gives
  HAHV=0, HALV=1, LAHV=2, LALV=3, so the four-class label always agrees with the two binary ones.
- ``categorical``: the values of one column mapped to classes (e.g. DREAMER dominance 1..5 -> 3 classes).

The authors' DEAP script assigns the quadrants in order with later rules overwriting earlier ones, and its
last rule uses ``≤`` (D8), so every trial with a rating exactly at the threshold on one axis and ≤ on the
other becomes LALV. ``four_tie_bug=True`` reproduces that overwrite order exactly, on quadrants tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from physiosync.config import PreprocessConfig, TaskConfig, resolve_preprocess, resolve_tasks
from physiosync.data.facts import DatasetFacts

HAHV, HALV, LAHV, LALV = 0, 1, 2, 3
FOUR_CLASS_NAMES = ("HAHV", "HALV", "LAHV", "LALV")


@dataclass(frozen=True)
class Task:
    """A named label: how per-trial ratings become integer classes.

    Everything downstream of the cache (fine-tuning, baselines, metrics, reports, ``compare``) knows a label
    only through this: its name, the label column of the window table, and its class names.

    Attributes:
        name: Task name used in ``labels: [...]``, file names and reports ("arousal", "four", "liking").
        kind: "threshold" (high ⇔ rating ≥ t), "quadrants" (two ratings, each split at its threshold) or
            "categorical" (a column's values mapped to classes).
        columns: The rating columns the task reads, in order (quadrants: first, second).
        class_names: One name per class index.
        values: Categorical only: the column values of each class, in class order (empty otherwise).
    """

    name: str
    kind: str
    columns: tuple[str, ...]
    class_names: tuple[str, ...]
    values: tuple[tuple[float, ...], ...] = ()

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def column(self) -> str:
        """The cache (``trials.npz``) column holding this task's integer labels."""
        return f"label_{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """The definition as the config and the cache manifest write it (``Task.from_dict`` reads it back)."""
        out: dict[str, Any] = {"kind": self.kind, "columns": list(self.columns), "class_names": list(self.class_names)}
        if self.kind == "categorical":
            out["classes"] = {c: list(v) for c, v in zip(self.class_names, self.values, strict=True)}
        return out

    @classmethod
    def from_dict(cls, name: str, spec: Mapping[str, Any] | TaskConfig) -> Task:
        """A task from its definition (a :class:`~physiosync.config.TaskConfig` or its dict), validated."""
        tc = spec if isinstance(spec, TaskConfig) else TaskConfig.model_validate(dict(spec))
        values = tuple(tuple(float(v) for v in vs) for vs in (tc.classes or {}).values())
        return cls(name, tc.kind, tuple(tc.columns), tuple(tc.class_names or ()), values)


def make_tasks(specs: Mapping[str, Mapping[str, Any] | TaskConfig]) -> dict[str, Task]:
    """Name -> :class:`Task` for task definitions (resolved config ``tasks``, a manifest's ``tasks``)."""
    return {name: Task.from_dict(name, spec) for name, spec in specs.items()}


def dataset_tasks(dataset: str | DatasetFacts, tasks: Mapping[str, TaskConfig] | None = None) -> dict[str, Task]:
    """Every task of a dataset: its facts' tasks with ``tasks`` (the config's) over them
    (:func:`physiosync.config.resolve_tasks`, the one place that combines them)."""
    return make_tasks(resolve_tasks(dataset, dict(tasks or {})))


def resolve_thresholds(dataset: str, cfg: PreprocessConfig) -> dict[str, float]:
    """Threshold per rating column: the config's values over the dataset facts' defaults
    (filled by :func:`physiosync.config.resolve_preprocess`, the one place that knows them)."""
    return dict(resolve_preprocess(dataset, cfg).thresholds or {})


def make_binary_labels(ratings: np.ndarray, threshold: float) -> np.ndarray:
    """High (1) ⇔ rating ≥ threshold, else low (0).

    Shape: ratings (...,) float -> (...,) int64.
    """
    return (np.asarray(ratings) >= threshold).astype(np.int64)


def make_quadrant_labels(
    first: np.ndarray, second: np.ndarray, t_first: float, t_second: float, tie_bug: bool = False
) -> np.ndarray:
    """Quadrant index ``2·low(first) + low(second)`` (high ⇔ rating ≥ its threshold).

    With ``tie_bug`` the authors' DEAP rule order is replayed (D8): classes 0, 1, 2 by the ≥ rule and then
    "class 3 if first ≤ t and second ≤ t" overwrites, which turns (t, t), (t, <t) and (<t, t) into class 3.

    Shape: first, second (...,) float -> (...,) int64.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    ta, tb = float(t_first), float(t_second)
    quadrant = 2 * (~(a >= ta)).astype(np.int64) + (~(b >= tb)).astype(np.int64)
    if tie_bug:
        quadrant[(a <= ta) & (b <= tb)] = 3
    return quadrant


def make_four_labels(
    valence: np.ndarray, arousal: np.ndarray, thresholds: Mapping[str, float], four_tie_bug: bool = False
) -> np.ndarray:
    """DEAP/DREAMER ``four``: quadrants of (arousal, valence), HAHV=0, HALV=1, LAHV=2, LALV=3.

    Shape: valence, arousal (...,) float -> (...,) int64.
    """
    return make_quadrant_labels(arousal, valence, thresholds["arousal"], thresholds["valence"], four_tie_bug)


def make_categorical_labels(values: np.ndarray, classes: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """Class index of each value: ``k`` where the value is one of ``classes[k]`` (exact match).

    Shape: values (...,) float -> (...,) int64.

    Raises:
        ValueError: a value that belongs to no class (the message lists the first few).
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, -1, dtype=np.int64)
    for k, members in enumerate(classes):
        out[np.isin(v, np.asarray(members, dtype=np.float64))] = k
    if (out < 0).any():
        bad = sorted({float(x) for x in v[out < 0]})[:5]
        raise ValueError(f"values {bad} belong to no class (classes: {[list(c) for c in classes]})")
    return out


def task_labels(
    task: Task, ratings: Mapping[str, np.ndarray], thresholds: Mapping[str, float], four_tie_bug: bool = False
) -> np.ndarray:
    """The integer labels of one task. Shape: each rating (...,) -> (...,) int64.

    ``four_tie_bug`` (D8) acts on quadrants tasks only.
    """
    cols = [ratings[c] for c in task.columns]
    if task.kind == "threshold":
        return make_binary_labels(cols[0], thresholds[task.columns[0]])
    if task.kind == "quadrants":
        return make_quadrant_labels(cols[0], cols[1], thresholds[task.columns[0]], thresholds[task.columns[1]],
                                    four_tie_bug)
    if task.kind == "categorical":
        try:
            return make_categorical_labels(cols[0], task.values)
        except ValueError as e:
            raise ValueError(f"task {task.name!r}, column {task.columns[0]!r}: {e}") from None
    raise ValueError(f"task {task.name!r}: unknown kind {task.kind!r}")


def make_labels(
    ratings: Mapping[str, np.ndarray],
    tasks: Mapping[str, Task],
    thresholds: Mapping[str, float],
    four_tie_bug: bool = False,
) -> dict[str, np.ndarray]:
    """All integer labels of a set of trials, keyed like the cache columns (``label_<task>``).

    Shape: each rating (...,) -> each label (...,) int64.
    """
    return {t.column: task_labels(t, ratings, thresholds, four_tie_bug) for t in tasks.values()}
