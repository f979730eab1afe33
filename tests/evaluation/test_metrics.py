"""Metrics against hand-computed values, whole-fold vs per-batch F1 (D11), aggregation ddof."""

from __future__ import annotations

import numpy as np
import pytest

from physiosync.evaluation.metrics import (
    aggregate,
    batch_mean_metrics,
    fold_metrics,
    majority_baseline,
    subject_metrics,
    trial_vote_accuracy,
)


def test_binary_fold_metrics_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    m = fold_metrics(y, p, 2)
    assert m["accuracy"] == pytest.approx(6 / 8)
    # recall(1) = 2/3, recall(0) = 4/5 -> balanced = (2/3 + 4/5) / 2
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    # positive class 1: precision 2/3, recall 2/3 -> F1 2/3
    assert m["f1"] == pytest.approx(2 / 3) and m["f1_kind"] == "binary"
    assert m["confusion"] == [[4, 1], [1, 2]]
    proba = np.eye(2)[p] * 0.8 + 0.1
    assert fold_metrics(y, proba, 2) == m  # probabilities give the argmax predictions


def test_four_class_weighted_and_macro_by_hand() -> None:
    y = np.array([0, 0, 1, 1, 2, 3])
    p = np.array([0, 1, 1, 1, 2, 2])
    m = fold_metrics(y, p, 4)
    f1 = {0: 2 / 3, 1: 0.8, 2: 2 / 3, 3: 0.0}  # per class: 2PR/(P+R)
    support = {0: 2, 1: 2, 2: 1, 3: 1}
    assert m["f1_kind"] == "weighted"
    assert m["f1_macro"] == pytest.approx(sum(f1.values()) / 4)
    assert m["f1"] == pytest.approx(sum(f1[c] * support[c] for c in f1) / 6)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 1 + 0) / 4)
    assert np.array(m["confusion"]).shape == (4, 4) and m["confusion"][3] == [0, 0, 1, 0]


def test_whole_fold_f1_differs_from_per_batch_mean() -> None:
    # batch 1: all positives found; batch 2: one positive missed among negatives
    y = np.array([1, 1, 0, 0, 0, 0, 1, 0])
    p = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    whole = fold_metrics(y, p, 2)["f1"]
    batched = batch_mean_metrics(y, p, 2, batch_size=4)["f1"]
    assert whole == pytest.approx(0.8)  # P = 1, R = 2/3
    assert batched == pytest.approx((1.0 + 0.0) / 2)
    assert whole != pytest.approx(batched)


def test_trial_vote_accuracy_by_hand() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 1, 1])
    p = np.array([1, 0, 1, 1, 1, 0, 0, 1])  # trial A: 2 of 3 right; B: 2 of 3 wrong; C: tie -> class 0
    groups = np.array([[0, 0]] * 3 + [[0, 1]] * 3 + [[1, 0]] * 2)
    assert trial_vote_accuracy(y, p, groups) == pytest.approx(1 / 3)
    assert trial_vote_accuracy(y, p, np.array([0, 0, 0, 1, 1, 1, 2, 2])) == pytest.approx(1 / 3)


def test_majority_baseline_uses_training_majority() -> None:
    m = majority_baseline(np.array([0, 1, 1, 1]), np.array([0, 0, 0, 1]), 2)
    assert m["majority_class"] == 1 and m["accuracy"] == pytest.approx(0.25)
    assert m["balanced_accuracy"] == pytest.approx(0.5)


def test_aggregate_population_std() -> None:
    agg = aggregate([{"accuracy": 0.5, "f1": 0.4, "f1_kind": "binary"}, {"accuracy": 0.7, "f1": 0.6, "f1_kind": "binary"}])
    assert agg["ddof"] == 0 and agg["n_folds"] == 2
    assert agg["accuracy"]["mean"] == pytest.approx(0.6)
    assert agg["accuracy"]["std"] == pytest.approx(0.1)  # ddof=0; ddof=1 would give 0.1414
    assert "f1_kind" not in agg
    assert aggregate([{"accuracy": 0.5}, {"accuracy": 0.7}], ddof=1)["accuracy"]["std"] == pytest.approx(0.02**0.5)


def test_subject_metrics_from_concatenated_predictions() -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    p = np.array([1, 1, 0, 1, 0, 0])
    subj = np.array([0, 0, 0, 0, 1, 1])
    out = subject_metrics(y, p, subj, 2, trial=np.array([0, 0, 1, 1, 0, 1]), y_majority=np.zeros(6, int))
    accs = [r["accuracy"] for r in out["per_subject"]]
    assert accs == pytest.approx([0.75, 0.5])
    assert out["summary"]["accuracy"]["mean"] == pytest.approx(0.625)
    assert out["summary"]["accuracy"]["std"] == pytest.approx(0.125)
    assert out["summary"]["n_subjects"] == 2
    assert [r["majority_accuracy"] for r in out["per_subject"]] == pytest.approx([0.5, 0.5])
