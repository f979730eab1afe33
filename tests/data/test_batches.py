"""Batch gathering equals direct indexing; samplers are seeded, duplicate-free and stay in their sets."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from builders import make_cache

from physiosync.data.batches import (
    gather_group_batch,
    gather_pairs,
    gather_rows,
    iter_tensor_batches,
    make_window_view,
    release_interval,
    release_pages,
    sample_index_batches,
    window_views,
)
from physiosync.data.cache import WindowCache
from physiosync.training.pretrain import gather_planned, plan_batches


@pytest.fixture
def cache(tmp_path) -> WindowCache:
    return make_cache(tmp_path)


def test_window_view_is_a_copy_free_tiling_even_with_a_ragged_tail():
    x = np.arange(2 * 3 * 2 * 70, dtype=np.float32).reshape(2, 3, 2, 70)
    v = make_window_view(x, 6, 11)  # 66 of 70 samples used
    assert v.shape == (2, 3, 6, 2, 11) and np.shares_memory(v, x)
    for w in range(6):
        np.testing.assert_array_equal(v[:, :, w], x[..., w * 11 : (w + 1) * 11])


def test_five_second_windows_are_five_one_second_windows(cache):
    one, five = window_views(cache, 1.0)["eeg"], window_views(cache, 5.0)["eeg"]
    for k in range(5):
        np.testing.assert_array_equal(five[:, :, 1, :, k * 128 : (k + 1) * 128], one[:, :, 5 + k])


def test_group_batch_equals_direct_indexing(cache):
    rng = np.random.default_rng(1)
    n_win = cache.n_windows(1.0)
    moments = rng.choice(cache.n_trials * n_win, 5, replace=False)
    idx_a, idx_b = rng.integers(0, 2, (5, 2)), rng.integers(2, 4, (5, 2))
    batch = gather_group_batch(cache, 1.0, moments, idx_a, idx_b)
    for mod in ("eeg", "gsr"):
        x = cache.signals(mod)
        assert batch[mod].shape == (5, 2, 2, x.shape[2], 128) and batch[mod].dtype == np.float32
        for b, m in enumerate(moments):
            t, w = divmod(int(m), n_win)
            for side, idx in enumerate((idx_a, idx_b)):
                for k in range(2):
                    np.testing.assert_array_equal(batch[mod][b, side, k], x[idx[b, k], t, :, w * 128 : (w + 1) * 128])


def test_pairs_and_rows_equal_direct_indexing(cache):
    n_win = cache.n_windows(5.0)
    sa, ma, sb, mb = np.array([0, 3]), np.array([0, 5]), np.array([2, 1]), np.array([4, 1])
    pairs = gather_pairs(cache, 5.0, sa, ma, sb, mb)
    x = cache.signals("eeg")
    assert pairs["eeg"].shape == (2, 2, 1, 4, 640)
    for b in range(2):
        for side, (s, m) in enumerate(((sa[b], ma[b]), (sb[b], mb[b]))):
            t, w = divmod(int(m), n_win)
            np.testing.assert_array_equal(pairs["eeg"][b, side, 0], x[s, t, :, w * 640 : (w + 1) * 640])

    table = cache.windows(5.0)
    rows = np.array([5, 0, 17, 3])
    got = gather_rows(cache, 5.0, table, rows)
    direct = cache.get_windows("gsr", 5.0, table.subject[rows], table.trial[rows], table.window[rows])
    np.testing.assert_array_equal(got["gsr"], direct)
    with pytest.raises(ValueError):
        gather_rows(cache, 1.0, table, rows)


def test_sampler_is_seeded_duplicate_free_and_stays_in_its_set():
    items = np.arange(3, 40, 2)
    a = sample_index_batches(items, 4, np.random.default_rng(0))
    b = sample_index_batches(items, 4, np.random.default_rng(0))
    c = sample_index_batches(items, 4, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert all(len(x) == 4 and len(np.unique(x)) == 4 for x in a)  # D24: no duplicate within a batch
    assert np.isin(np.concatenate(a), items).all() and len(a) == len(items) // 4
    assert len(sample_index_batches(items, 4, np.random.default_rng(0), max_batches=2)) == 2
    kept = sample_index_batches(items, 4, None, drop_last=False)
    assert np.array_equal(np.concatenate(kept), items[: len(items) - (len(items) % 4 == 1)])
    with pytest.raises(ValueError):
        sample_index_batches(np.array([1, 2, 2]), 2, np.random.default_rng(0))


def test_group_plan_draws_groups_from_the_two_halves_of_training_subjects():
    train_subjects = np.array([0, 2, 5, 6, 7])  # halves: [0, 2] and [5, 6, 7]
    moments = np.arange(10, 30)
    plan = plan_batches("groups", moments, train_subjects, 4, 2, np.random.default_rng(3), None)
    assert len(plan) == 5
    for m, idx_a, idx_b in plan:
        assert idx_a.shape == idx_b.shape == (4, 2)
        assert np.isin(m, moments).all()
        assert np.isin(idx_a, [0, 2]).all() and np.isin(idx_b, [5, 6, 7]).all()


@pytest.mark.parametrize("mode", ["augviews", "official"])
def test_pair_plans_use_only_training_subjects_and_moments(mode):
    subjects, moments = np.array([1, 3]), np.array([4, 8, 9])
    plan = plan_batches(mode, moments, subjects, 4, 2, np.random.default_rng(0), None)
    for sa, ma, sb, mb in plan:
        assert np.isin(np.concatenate([sa, sb]), subjects).all() and np.isin(np.concatenate([ma, mb]), moments).all()
        if mode == "augviews":
            assert np.array_equal(sa, sb) and np.array_equal(ma, mb)
        else:
            assert len(sa) == 2  # 4 samples -> 2 (unrelated) pairs
    if mode == "official":
        assert sum(len(p[0]) * 2 for p in plan) == 4 * (len(subjects) * len(moments) // 4)


def test_prefetched_tensors_match_synchronous_gathering(cache):
    plan = plan_batches("groups", np.arange(12), np.arange(4), 3, 2, np.random.default_rng(0), None)
    gather = partial(gather_planned, cache, 1.0)
    sync = list(iter_tensor_batches(gather, plan, torch.device("cpu"), prefetch=0))
    ahead = list(iter_tensor_batches(gather, plan, torch.device("cpu"), prefetch=2))
    assert len(sync) == len(ahead) == 4
    for s, a in zip(sync, ahead, strict=True):
        for mod in s:
            assert a[mod].dtype == torch.float32 and a[mod].is_contiguous()
            assert torch.equal(s[mod], a[mod])


def test_released_pages_read_back_identically(cache):
    idx = (np.array([0, 3]), np.array([[0, 1], [1, 0]]), np.array([[2, 3], [3, 2]]))
    before = gather_group_batch(cache, 1.0, *idx)
    release_pages(cache)
    after = gather_group_batch(cache, 1.0, *idx)
    for mod in before:
        np.testing.assert_array_equal(before[mod], after[mod])
    assert release_interval(32) == 2 and release_interval(4096) == 1
