"""Label rules (method-spec §2.1 step 5, §2.3 step 5, D8, D27): ratings -> binary and four-class labels.

Binary labels are "high ⇔ rating ≥ threshold" on each axis (DEAP 5 on the 1–9 scale, DREAMER 3 on 1–5;
thresholds come from the config or the dataset facts). The four quadrants are HAHV=0, HALV=1, LAHV=2,
LALV=3 with the same ≥ rule on both axes, so the four-class label always agrees with the two binary ones.

The authors' DEAP script assigns the quadrants in order with later rules overwriting earlier ones, and its
last rule uses ``≤`` (D8), so every trial with a rating exactly at the threshold on one axis and ≤ on the
other becomes LALV. ``four_tie_bug=True`` reproduces that overwrite order exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from physiosync.config import PreprocessConfig, resolve_preprocess

HAHV, HALV, LAHV, LALV = 0, 1, 2, 3
FOUR_CLASS_NAMES = ("HAHV", "HALV", "LAHV", "LALV")


@dataclass(frozen=True)
class Task:
    """A named label: how per-trial ratings or metadata become integer classes.

    Everything downstream of the cache (fine-tuning, baselines, metrics, reports, ``compare``) knows a label
    only through this: its name, the label column of the window table, and its class names.

    Attributes:
        name: Task name used in ``labels: [...]``, file names and reports ("arousal", "four", "liking").
        kind: "threshold" (high ⇔ rating ≥ t), "quadrants" (two ratings, each split at its threshold) or
            "categorical" (a metadata column mapped to classes).
        columns: The rating/metadata columns the task reads, in order (quadrants: first, second).
        class_names: One name per class index.
    """

    name: str
    kind: str
    columns: tuple[str, ...]
    class_names: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def column(self) -> str:
        """The window-table / cache column holding this task's integer labels."""
        return f"label_{self.name}"


# The tasks every cache defines today (to be read from the dataset facts files).
DEFAULT_TASKS = {
    "arousal": Task("arousal", "threshold", ("arousal",), ("low", "high")),
    "valence": Task("valence", "threshold", ("valence",), ("low", "high")),
    "four": Task("four", "quadrants", ("arousal", "valence"), FOUR_CLASS_NAMES),
}


def resolve_thresholds(dataset: str, cfg: PreprocessConfig) -> dict[str, float]:
    """Thresholds for ``valence`` and ``arousal``: the config's values over the dataset facts' defaults
    (filled by :func:`physiosync.config.resolve_preprocess`, the one place that knows them)."""
    return dict(resolve_preprocess(dataset, cfg).thresholds or {})


def make_binary_labels(ratings: np.ndarray, threshold: float) -> np.ndarray:
    """High (1) ⇔ rating ≥ threshold, else low (0).

    Shape: ratings (...,) float -> (...,) int64.
    """
    return (np.asarray(ratings) >= threshold).astype(np.int64)


def make_four_labels(
    valence: np.ndarray, arousal: np.ndarray, thresholds: Mapping[str, float], four_tie_bug: bool = False
) -> np.ndarray:
    """Quadrant labels HAHV=0, HALV=1, LAHV=2, LALV=3.

    With ``four_tie_bug`` the authors' DEAP rule order is replayed: 0, 1, 2 by the ≥ rule and then
    "LALV if arousal ≤ t and valence ≤ t" overwrites, which turns (t, t), (t, <t) and (<t, t) into LALV.

    Shape: valence, arousal (...,) float -> (...,) int64.
    """
    v = np.asarray(valence, dtype=np.float64)
    a = np.asarray(arousal, dtype=np.float64)
    tv, ta = float(thresholds["valence"]), float(thresholds["arousal"])
    high_a, high_v = a >= ta, v >= tv
    # Quadrant index = 2 * low_arousal + low_valence, which is exactly the HAHV/HALV/LAHV/LALV order.
    four = 2 * (~high_a).astype(np.int64) + (~high_v).astype(np.int64)
    if four_tie_bug:
        four[(a <= ta) & (v <= tv)] = LALV
    return four


def make_labels(
    ratings: Mapping[str, np.ndarray], thresholds: Mapping[str, float], four_tie_bug: bool = False
) -> dict[str, np.ndarray]:
    """All integer labels of a set of trials, keyed like the cache columns.

    Shape: each rating (...,) -> each label (...,) int64.

    Returns:
        ``{"label_arousal", "label_valence", "label_four"}`` arrays.
    """
    return {
        "label_arousal": make_binary_labels(ratings["arousal"], thresholds["arousal"]),
        "label_valence": make_binary_labels(ratings["valence"], thresholds["valence"]),
        "label_four": make_four_labels(ratings["valence"], ratings["arousal"], thresholds, four_tie_bug),
    }
