"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

# The project's shared/ folder (docs, fixtures) sits beside the repository checkout, in development and in
# CI alike; PHYSIOSYNC_SHARED overrides it.
SHARED = Path(os.environ.get("PHYSIOSYNC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PARITY_FIXTURE = SHARED / "fixtures" / "deap-official-parity"
