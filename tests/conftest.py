"""Shared test helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The project's shared/ folder (docs, fixtures) sits beside the repository checkout, in development and in
# CI alike; PHYSIOSYNC_SHARED overrides it.
SHARED = Path(os.environ.get("PHYSIOSYNC_SHARED", Path(__file__).resolve().parents[2] / "shared"))
PARITY_FIXTURE = SHARED / "fixtures" / "deap-official-parity"

# Float tolerances in these tests are derived for IEEE float32/float64 arithmetic. On CPUs with AMX or
# AVX512-BF16, oneDNN may run float32 matmuls/convolutions in bf16 (≈ 3 significant digits) when its
# default math mode allows it; pin the strict mode for the test process (read by oneDNN on first use).
os.environ["ONEDNN_DEFAULT_FPMATH_MODE"] = "STRICT"


@pytest.fixture(autouse=True)
def _float32_stays_float32():
    """Fail the test that (directly or through library code) lowers float32 matmul/conv precision."""
    yield
    import torch

    mkldnn = torch.backends.mkldnn
    modes = {"matmul": torch.get_float32_matmul_precision()}
    modes.update({f"onednn {k}": getattr(v, "fp32_precision", "none")
                  for k, v in (("matmul", mkldnn.matmul), ("conv", mkldnn.conv))})
    lowered = {k: m for k, m in modes.items() if m not in ("highest", "none", "ieee")}
    if lowered:  # restore, so that only the test that lowered it fails
        torch.set_float32_matmul_precision("highest")
        for v in (mkldnn.matmul, mkldnn.conv):
            if hasattr(v, "fp32_precision"):
                v.fp32_precision = "none"
    assert not lowered, f"float32 precision was lowered: {lowered}"


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of tiny-model training tests (use via ``pytest.mark.usefixtures``).

    Why: tiny models gain nothing from intra-op threads, and on a shared 2-core runner OpenMP barriers make
    them many times slower; results do not depend on the thread count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def fp32_unless_asked():
    """``precision: auto`` (the default) resolves to fp32 in every test, on every CI CPU.

    Why: the suite's numeric checks are written for float32; CI runners may be AMX Xeons or Zen 5 EPYCs
    where ``auto`` would pick bf16. Tests of bf16 set ``precision: bf16`` explicitly, and the tests of the
    decision itself call :func:`physiosync.training.runtime.cpu_bf16_is_fast` / monkeypatch this again. Session
    scope: module-scoped fixtures (e.g. a reference run shared by a module's tests) must see it too.
    """
    import physiosync.training.runtime

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(physiosync.training.runtime, "bf16_is_fast", lambda device: False)
        yield
