"""Chance by label permutation and the paired Wilcoxon test of ``compare``, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from physiosync.evaluation.statistics import MIN_FOLD_PAIRS, chance_block, paired_test, permutation_chance


def test_permutation_chance_is_seeded_and_near_half() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    a = permutation_chance(y, y, n_permutations=200, seed=3)
    assert a == permutation_chance(y, y, n_permutations=200, seed=3)
    assert a["observed"] == 1.0 and a["p_value"] == pytest.approx(1 / 201)
    assert abs(a["chance_mean"] - 0.5) < 0.05
    g = np.repeat(np.arange(40), 10)
    yt = np.repeat(rng.integers(0, 2, 40), 10)
    b = permutation_chance(yt, yt, n_permutations=200, seed=3, group_ids=g)
    assert b["chance_std"] > a["chance_std"]  # 40 exchangeable trials, not 400 windows: wider null


def _block(fold_acc: dict[int, float], subject_acc: dict[int, float]) -> dict:
    """The parts of a ``summarise_label`` block that the paired test reads."""
    return {"folds": [{"fold": k, "accuracy": v} for k, v in fold_acc.items()],
            "subjects": {"per_subject": [{"subject": k, "accuracy": v} for k, v in subject_acc.items()]}}


def test_paired_test_by_fold_matches_the_exact_signed_rank_distribution() -> None:
    # 6 folds, the row better on every fold by distinct amounts: the smaller signed-rank sum W is 0, and the
    # exact two-sided p is 2 / 2^6 (only "all positive" and "all negative" are as extreme).
    ref = {k: 0.5 for k in range(MIN_FOLD_PAIRS)}
    row = {k: 0.5 + 0.01 * (k + 1) for k in range(MIN_FOLD_PAIRS)}
    t = paired_test(_block(row, {0: 0.1}), _block(ref, {0: 0.9}))
    assert t["unit"] == "folds" and t["n"] == MIN_FOLD_PAIRS and t["note"] == ""
    assert t["statistic"] == 0.0
    assert t["p_value"] == pytest.approx(2 / 2**MIN_FOLD_PAIRS, rel=1e-12)


def test_paired_test_falls_back_to_subjects_with_few_folds() -> None:
    # 2 folds < 6: pairs are the subjects present in both rows (3 common of 4)
    row = _block({0: 0.6, 1: 0.7}, {0: 0.9, 1: 0.8, 2: 0.7, 5: 0.1})
    ref = _block({0: 0.5, 1: 0.5}, {0: 0.5, 1: 0.5, 2: 0.5, 3: 0.5})
    t = paired_test(row, ref)
    assert t["unit"] == "subjects" and t["n"] == 3
    assert t["statistic"] == 0.0 and t["p_value"] == pytest.approx(2 / 2**3, rel=1e-12)


def test_paired_test_says_why_there_is_no_number() -> None:
    same = _block({0: 0.5}, {0: 0.6, 1: 0.7})
    t = paired_test(same, same)
    assert t["p_value"] is None and t["statistic"] is None and t["note"] == "all paired differences are zero"
    t = paired_test(_block({}, {0: 0.6}), _block({}, {1: 0.6}))
    assert t["n"] == 0 and t["p_value"] is None and t["note"] == "no common pairs"


def test_chance_block_pools_folds_and_permutes_whole_trials() -> None:
    rng = np.random.default_rng(1)
    preds = []
    for fold in range(2):
        subject, trial = np.repeat([0, 1], 30), np.tile(np.repeat(np.arange(3) + 3 * fold, 10), 2)
        y = np.repeat(rng.integers(0, 2, 6), 10)
        preds.append({"y_true": y, "y_pred": rng.integers(0, 2, 60), "subject": subject, "trial": trial})
    got = chance_block(preds, seed=5, n_permutations=50)
    cat = {k: np.concatenate([p[k] for p in preds]) for k in preds[0]}
    want = permutation_chance(cat["y_true"], cat["y_pred"], n_permutations=50, seed=5,
                              group_ids=np.stack([cat["subject"], cat["trial"]], axis=1))
    assert {k: got[k] for k in want} == want and "trial" in got["method"]
    assert chance_block([], seed=5) is None
    empty = {k: np.zeros(0, dtype=np.int64) for k in preds[0]}
    assert chance_block([empty], seed=5) is None
