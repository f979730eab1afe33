"""The one way a fraction is shown as a percentage: ``report.md``, the printed results, the comparison.

Why one helper: the run report, the console table of ``physiosync run`` and ``comparison.md`` show the
same statistics side by side; a reader comparing them must see the same form everywhere — ``mean ± std``
in percent, a bare ``mean`` when there is no spread, and ``—`` for a missing number. Only the number of
decimals differs by output (``report.md``: 2, the console and the comparison: 1).
"""

from __future__ import annotations

from typing import Any

MISSING = "—"


def format_pct(mean: float | None, std: float | None = None, digits: int = 1, scale: float = 100.0) -> str:
    """``"62.5 ± 3.1"`` (or ``"62.5"`` without ``std``; ``"—"`` without ``mean``).

    Args:
        mean: A fraction (0..1), or None when there is no number.
        std: Its spread (same unit), or None.
        digits: Decimals after the point.
        scale: Factor to percent: 100 for fractions, 1 for numbers already in percent (the paper's table).
    """
    if mean is None:
        return MISSING
    if std is None:
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def format_stat(stat: dict[str, Any] | None, digits: int = 1) -> str:
    """:func:`format_pct` of a summary entry ``{"mean", "std", ...}`` (``"—"`` when absent or empty)."""
    if not stat:
        return MISSING
    return format_pct(stat.get("mean"), stat.get("std"), digits)


def dataset_label(meta: dict[str, Any]) -> str:
    """The dataset as a report names it: the dataset file's own name beside the reader when they differ.

    Own recordings are read by the ``recordings`` reader but named by their ``dataset.yaml``
    (``dataset_name``, e.g. ``my-study (recordings)``); DEAP and DREAMER are just ``deap`` / ``dreamer``.
    """
    reader = str(meta.get("dataset") or "—")
    name = meta.get("dataset_name")
    return f"{name} ({reader})" if name and name != reader else reader
