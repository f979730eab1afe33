"""Project exceptions: every message names the file, the field, what was found and what was expected."""

from __future__ import annotations

from pathlib import Path


class PhysioSyncError(Exception):
    """Base class for errors the CLI reports without a traceback."""


class DataFormatError(PhysioSyncError):
    """An input file does not have the expected structure or content."""

    def __init__(self, path: str | Path, field: str, found: object, expected: object) -> None:
        self.path, self.field, self.found, self.expected = Path(path), field, found, expected
        super().__init__(f"{path}: field {field!r}: found {found}; expected {expected}")


class ConfigError(PhysioSyncError):
    """A configuration key is unknown, has the wrong type, or an override is malformed."""
