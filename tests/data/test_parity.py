"""`preprocess.official=true` reproduces the authors' DEAP arrays (shared parity fixture, method-spec §2.1–2.2)."""


import numpy as np
import pytest
from conftest import PARITY_FIXTURE

from physiosync.config import load_config
from physiosync.data.cache import build_cache

FIXTURE = PARITY_FIXTURE
pytestmark = pytest.mark.skipif(not (FIXTURE / "expected.npz").is_file(), reason="parity fixture not present")


@pytest.fixture(scope="module")
def official_cache(tmp_path_factory):
    cfg = load_config(overrides=["preprocess.official=true"])
    cfg.dataset.data_dir = FIXTURE / "data_preprocessed_python"
    cfg.cache_dir = tmp_path_factory.mktemp("cache")
    return build_cache(cfg, progress=False)


def to_authors_layout(x: np.ndarray, n_win: int) -> np.ndarray:
    """(S, K, C, N) -> the authors' (K * n_win, S, 1, C, W) with row = trial * n_win + window."""
    s, k, c, n = x.shape
    return x.reshape(s, k, c, n_win, n // n_win).transpose(1, 3, 0, 2, 4).reshape(k * n_win, s, 1, c, n // n_win)


@pytest.mark.parametrize("window_s", [1.0, 5.0])
def test_signals_match_authors(official_cache, window_s):
    expected = np.load(FIXTURE / "expected.npz")
    tag = f"{window_s:g}s"
    n_win = official_cache.n_windows(window_s)
    for mod in ("eeg", "gsr"):
        got = to_authors_layout(np.asarray(official_cache.signals(mod)), n_win)
        ref = expected[f"{mod}_{tag}"]
        assert got.shape == ref.shape
        # The cache is a float32 store of a float64 computation: ≤ EPS32/2 relative from it (measured: at
        # most 6e-8). rtol = 2·EPS32 adds headroom; atol (EPS32 × the largest value) covers float64
        # operation-order noise of values near 0 after baseline removal, ~1e-16 × the raw signal.
        eps32 = float(np.finfo(np.float32).eps)
        np.testing.assert_allclose(got, ref, rtol=2 * eps32, atol=eps32 * np.abs(ref).max())


@pytest.mark.parametrize("window_s", [1.0, 5.0])
def test_labels_match_authors(official_cache, window_s):
    expected = np.load(FIXTURE / "expected.npz")
    tag = f"{window_s:g}s"
    table = official_cache.windows(window_s)
    s, k, w = official_cache.n_subjects, official_cache.n_trials, official_cache.n_windows(window_s)
    for ours, theirs in (("arousal", "A"), ("valence", "V"), ("four", "Four")):
        got = table.label(ours).reshape(s, k * w).T  # row = trial * n_win + window, column = subject
        np.testing.assert_array_equal(got, expected[f"label_{theirs}_{tag}"].astype(np.int64))


def test_fixed_four_class_differs_only_at_ties(official_cache, tmp_path):
    cfg = load_config()
    cfg.dataset.data_dir = FIXTURE / "data_preprocessed_python"
    cfg.cache_dir = tmp_path
    fixed = build_cache(cfg, progress=False)
    # README table: authors' (3, 2 / 3, 0) vs fixed (0, 2 / 1, 0)
    assert official_cache.trials["label_four"].tolist() == [[3, 2], [3, 0]]
    assert fixed.trials["label_four"].tolist() == [[0, 2], [1, 0]]
