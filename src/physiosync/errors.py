"""Project exceptions: every message names the file, the field, what was found and what was expected.

Messages are bounded: an echoed value (``found``, ``expected``, a config value) is cut to
:data:`MAX_ECHO` characters and a whole message to :data:`MAX_MESSAGE`. Why: an error quotes the user's
input back, and a hostile or merely huge input (a 280-byte YAML alias bomb expands to a 226 MB list; a
DEAP array printed whole) must not turn one error line into hundreds of megabytes of terminal output.
"""

from __future__ import annotations

from pathlib import Path

MAX_ECHO = 300  # characters of one echoed value (a path, a repr, a shape)
MAX_MESSAGE = 2000  # characters of one whole message


def shorten(value: object, limit: int = MAX_ECHO) -> str:
    """``str(value)`` cut to ``limit`` characters with an ellipsis that says how much was left out."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


class PhysioSyncError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class DataFormatError(PhysioSyncError):
    """An input file does not have the expected structure or content."""

    def __init__(self, path: str | Path, field: str, found: object, expected: object, hint: str = "") -> None:
        """``hint``: what the user can do about it — our own words, so it is not cut like an echoed value."""
        self.path, self.field, self.found, self.expected, self.hint = Path(path), field, found, expected, hint
        tail = f" — {hint}" if hint else ""
        super().__init__(shorten(f"{shorten(path)}: field {shorten(field)!r}: found {shorten(found)}; "
                                 f"expected {shorten(expected)}{tail}", MAX_MESSAGE))


class ConfigError(PhysioSyncError):
    """A configuration key is unknown, has the wrong type, or an override is malformed."""

    def __init__(self, message: object) -> None:
        super().__init__(shorten(message, MAX_MESSAGE))


class JobsFailed(PhysioSyncError):
    """Some jobs of a run failed (after their retries); the others finished and a re-run resumes."""

    def __init__(self, message: object) -> None:
        super().__init__(shorten(message, MAX_MESSAGE))
