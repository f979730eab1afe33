"""Subject ids and subject selection: the one place every reader's ``subjects=[...]`` goes through.

Why one place: each reader used to check the requested ids itself, with its own message; now a reader only
lists what its files hold and :func:`select_subjects` keeps the requested ones (canonical ``"s01"`` ids,
in the reader's storage order) or names the source and lists the valid ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from physiosync.errors import DataFormatError

T = TypeVar("T")


def canonical_subject_id(subject: str | int) -> str:
    """``"s1"``, ``"s01"``, ``"1"`` or ``1`` -> ``"s01"`` (the id used everywhere downstream)."""
    text = str(subject).strip().lower()
    digits = text[1:] if text.startswith("s") else text
    if not digits.isdigit() or int(digits) < 1:
        raise ValueError(f"not a subject id: {subject!r} (expected e.g. 's01')")
    return f"s{int(digits):02d}"


def select_subjects(
    source: str | Path, listing: Sequence[tuple[str, T]], subjects: Iterable[str | int] | None
) -> list[tuple[str, T]]:
    """The entries of ``listing`` whose ids are requested, in listing (storage) order.

    Args:
        source: The file or folder the listing comes from (named in errors).
        listing: ``(subject id, anything)`` pairs as a reader found them, in storage order.
        subjects: Requested ids (``"s01"``, ``"s1"``, ``1``); ``None`` keeps all.

    Raises:
        DataFormatError: an id that is not one, or ids the source does not hold (listing the valid ones).
    """
    if subjects is None:
        return list(listing)
    wanted = []
    for s in subjects:
        try:
            wanted.append(canonical_subject_id(s))
        except ValueError:
            raise DataFormatError(source, "subjects", repr(s), "ids like 's01'") from None
    have = [sid for sid, _ in listing]
    missing = [s for s in dict.fromkeys(wanted) if s not in have]
    if missing:
        raise DataFormatError(source, "subjects", f"missing {missing}", f"one of [{', '.join(have)}]")
    keep = set(wanted)
    return [entry for entry in listing if entry[0] in keep]
