"""Subject-group sampling for LS-TCL (method-spec §4.1 item 1, §4.2 fix of D2).

For every stimulus moment of a pre-training batch, two groups of ``N`` subjects are drawn — one from each
half of the *training* subject list — and their windows of that moment become the two sides of a positive
pair after max-pooling over the group. The halves are fixed and disjoint, so the two groups of a moment can
never share a subject (a shared subject would make the positive trivially identical). Draws are *with
replacement* inside a group, exactly as the authors do, and come from an explicit
:class:`numpy.random.Generator` so a run is reproducible from its seed (D18).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def split_halves(train_subjects: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split the training subject list into its first ``⌊S/2⌋`` entries and the rest, in the given order.

    The authors fix the halves by subject index (DEAP 0–15 / 16–31); applied to the list of *training*
    subjects of a fold, the same rule keeps held-out subjects out of both halves.

    Args:
        train_subjects: Subject indices (into the cache's subject list) available for pre-training.

    Shape:
        train_subjects: (S,); returns (⌊S/2⌋,) and (S − ⌊S/2⌋,).

    Raises:
        ValueError: fewer than two subjects (a half would be empty) or repeated subjects (the halves
            would overlap).
    """
    subjects = np.asarray(train_subjects, dtype=np.int64).reshape(-1)
    if subjects.size < 2:
        raise ValueError(f"group pairing needs at least 2 training subjects, got {subjects.size}")
    if np.unique(subjects).size != subjects.size:
        raise ValueError(f"training subject list has repeated entries: {subjects.tolist()}")
    k = subjects.size // 2
    return subjects[:k].copy(), subjects[k:].copy()


def sample_groups(
    n_moments: int,
    half_a: Sequence[int] | np.ndarray,
    half_b: Sequence[int] | np.ndarray,
    n_per_group: int,
    generator: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw, per moment, ``n_per_group`` subjects with replacement from each half (vectorised).

    Args:
        n_moments: Number of stimulus moments in the batch (B).
        half_a: Subject indices of the first half (side 0 of every pair).
        half_b: Subject indices of the second half (side 1 of every pair).
        n_per_group: Subjects max-pooled per group (N; 2 in the paper).
        generator: Source of randomness; the only one used, so equal seeds give equal groups.

    Shape:
        half_a: (S_a,); half_b: (S_b,); returns idx_a (B, N) and idx_b (B, N), int64 subject indices
        (values taken from ``half_a`` / ``half_b``, not positions in them).

    Raises:
        ValueError: empty or overlapping halves, ``n_moments < 0`` or ``n_per_group < 1``.
    """
    a = np.asarray(half_a, dtype=np.int64).reshape(-1)
    b = np.asarray(half_b, dtype=np.int64).reshape(-1)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"both halves must be non-empty (got {a.size} and {b.size} subjects)")
    if np.intersect1d(a, b).size:
        raise ValueError(f"halves overlap on subjects {np.intersect1d(a, b).tolist()}")
    if n_moments < 0 or n_per_group < 1:
        raise ValueError(f"need n_moments >= 0 and n_per_group >= 1, got {n_moments}, {n_per_group}")
    idx_a = a[generator.integers(0, a.size, size=(n_moments, n_per_group))]
    idx_b = b[generator.integers(0, b.size, size=(n_moments, n_per_group))]
    return idx_a, idx_b
