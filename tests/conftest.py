"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

# The project's shared/ folder (docs, fixtures) sits beside the repository checkout, in development and in
# CI alike; PHYSIOSYNC_SHARED overrides it.
SHARED = Path(os.environ.get("PHYSIOSYNC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PARITY_FIXTURE = SHARED / "fixtures" / "deap-official-parity"


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fp32_unless_asked(monkeypatch):
    """``precision: auto`` (the default) resolves to fp32 in every test, on every CI CPU.

    Why: the suite's numeric checks are written for float32; CI runners may be AMX Xeons or Zen 5 EPYCs
    where ``auto`` would pick bf16. Tests of bf16 set ``precision: bf16`` explicitly, and the tests of the
    decision itself call :func:`physiosync.runtime.cpu_bf16_is_fast` / monkeypatch this again.
    """
    import physiosync.runtime

    monkeypatch.setattr(physiosync.runtime, "bf16_is_fast", lambda device: False)
