import numpy as np
import pytest

from physiosync.data.sampling import sample_groups, split_halves


def test_split_halves_order_and_sizes():
    a, b = split_halves([7, 3, 9, 1, 4])
    assert a.tolist() == [7, 3] and b.tolist() == [9, 1, 4]
    a, b = split_halves(np.arange(32))
    assert a.tolist() == list(range(16)) and b.tolist() == list(range(16, 32))


@pytest.mark.parametrize("bad", [[], [3], [1, 2, 1]])
def test_split_halves_rejects(bad):
    with pytest.raises(ValueError):
        split_halves(bad)


def test_draws_only_from_given_halves():
    half_a, half_b = np.array([2, 5, 11]), np.array([0, 8, 13, 21])
    idx_a, idx_b = sample_groups(500, half_a, half_b, 2, np.random.default_rng(0))
    assert idx_a.shape == idx_b.shape == (500, 2)
    assert idx_a.dtype == np.int64
    assert set(np.unique(idx_a)) == set(half_a.tolist())  # only from A, and every member reachable
    assert set(np.unique(idx_b)) == set(half_b.tolist())


def test_with_replacement():
    # A group larger than its half is only possible with replacement.
    idx_a, idx_b = sample_groups(10, [4], [6, 7], 3, np.random.default_rng(1))
    assert (idx_a == 4).all() and idx_b.shape == (10, 3)
    # With two-member halves and N = 2, about half of the groups repeat a subject.
    idx_a, _ = sample_groups(2000, [0, 1], [2, 3], 2, np.random.default_rng(2))
    repeats = (idx_a[:, 0] == idx_a[:, 1]).mean()
    assert 0.4 < repeats < 0.6


def test_uniform_over_half():
    idx_a, _ = sample_groups(4000, np.arange(4), np.arange(4, 8), 2, np.random.default_rng(3))
    freq = np.bincount(idx_a.ravel(), minlength=4) / idx_a.size
    assert np.allclose(freq, 0.25, atol=0.02)


def test_reproducible_for_seed_and_different_across_seeds():
    args = (64, np.arange(16), np.arange(16, 32), 2)
    a1, b1 = sample_groups(*args, np.random.default_rng(42))
    a2, b2 = sample_groups(*args, np.random.default_rng(42))
    a3, b3 = sample_groups(*args, np.random.default_rng(43))
    assert np.array_equal(a1, a2) and np.array_equal(b1, b2)
    assert not np.array_equal(a1, a3) and not np.array_equal(b1, b3)


@pytest.mark.parametrize(
    "half_a,half_b,n_moments,n_per_group",
    [([], [1], 4, 2), ([0], [], 4, 2), ([0, 1], [1, 2], 4, 2), ([0], [1], 4, 0), ([0], [1], -1, 2)],
)
def test_rejects_bad_arguments(half_a, half_b, n_moments, n_per_group):
    with pytest.raises(ValueError):
        sample_groups(n_moments, half_a, half_b, n_per_group, np.random.default_rng(0))
