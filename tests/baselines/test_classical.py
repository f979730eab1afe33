"""Classical baselines: fitting on training rows only, majority behaviour, output alignment."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from physiosync.baselines.classical import CLASSIFIERS, make_classifier, run_classical


@dataclass
class SimpleFold:
    """The fields of ``physiosync.data.protocols.Fold`` that classical baselines read."""

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def separable_data(n: int, rng: np.random.Generator, n_features: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Label = sign of feature 0 (margin ±1); the other features are noise."""
    y = rng.integers(0, 2, size=n)
    x = rng.normal(scale=0.2, size=(n, n_features))
    x[:, 0] += np.where(y == 1, 1.0, -1.0)
    return x, y


@pytest.mark.parametrize("name", ["logreg", "svm-rbf"])
def test_scaler_is_fitted_on_training_rows_only(name: str) -> None:
    # Test windows carry a huge offset (+1000 on the informative feature). A scaler fitted on the
    # training rows maps every test window far onto the positive side: a linear model must predict class 1
    # for all of them. A scaler fitted on the test rows would re-centre them and give mixed predictions.
    rng = np.random.default_rng(0)
    x, y = separable_data(400, rng)
    test = np.arange(300, 400)
    x[test, 0] += 1000.0
    fold = SimpleFold(0, np.arange(300), np.array([], dtype=int), test)
    (pred,) = run_classical(x, y, [fold], name, seed=0)
    if name == "logreg":
        assert (pred.y_pred == 1).all()
    # Counterfactual: the same trained model behind a scaler fitted on the test rows recovers the labels,
    # so the check above distinguishes the two.
    leaky = make_classifier(name).fit(x[:300], y[:300])
    leaky_pred = leaky[-1].predict(StandardScaler().fit_transform(x[test]))
    assert (leaky_pred == y[test]).mean() > 0.9
    assert (pred.y_pred == y[test]).mean() < 0.8


@pytest.mark.parametrize("name", ["logreg", "svm-rbf"])
def test_model_is_fitted_on_training_rows_only(name: str) -> None:
    # Test rows have the opposite feature-label relation. A model that saw no test row predicts the
    # training relation and is therefore wrong on every test row.
    rng = np.random.default_rng(1)
    x, y = separable_data(300, rng)
    test = np.arange(200, 300)
    y[test] = 1 - y[test]
    fold = SimpleFold(3, np.arange(200), np.array([], dtype=int), test)
    (pred,) = run_classical(x, y, [fold], name, seed=0)
    assert pred.fold == 3
    assert (pred.y_pred != pred.y_true).mean() > 0.95


def test_majority_predicts_the_training_majority() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 4))
    y = np.zeros(100, dtype=int)
    y[:60] = 2  # training rows 0..79: 60 of class 2, 20 of class 0
    y[80:] = 1  # test rows are all class 1, which never occurs in training
    fold = SimpleFold(0, np.arange(80), np.array([], dtype=int), np.arange(80, 100))
    (pred,) = run_classical(x, y, [fold], "majority", n_classes=4)
    assert (pred.y_pred == 2).all()
    assert pred.proba.shape == (20, 4)
    np.testing.assert_array_equal(pred.proba, np.tile([0.0, 0.0, 1.0, 0.0], (20, 1)))


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_outputs_are_aligned_with_fold_test_rows(name: str) -> None:
    rng = np.random.default_rng(3)
    x, y = separable_data(120, rng)
    order = rng.permutation(120)
    folds = [SimpleFold(i, np.setdiff1d(order, part), np.array([], dtype=int), np.sort(part))
             for i, part in enumerate(np.array_split(order, 3))]
    preds = run_classical(x, y, folds, name, seed=0)
    assert [p.fold for p in preds] == [0, 1, 2]
    for p, f in zip(preds, folds, strict=True):
        np.testing.assert_array_equal(p.rows, f.test)
        np.testing.assert_array_equal(p.y_true, y[f.test])
        assert p.proba.shape == (len(f.test), 2)
        np.testing.assert_allclose(p.proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(p.proba.argmax(axis=1), p.y_pred)
    if name != "majority":
        acc = np.mean(np.concatenate([p.y_pred == p.y_true for p in preds]))
        assert acc > 0.9


def test_feature_subset_rows_map_fold_indices() -> None:
    # Features extracted for a subset of table rows (e.g. one subject) are addressed through `rows`.
    rng = np.random.default_rng(4)
    x, y = separable_data(60, rng)
    rows = np.arange(1000, 1060)
    fold = SimpleFold(0, rows[:40], np.array([], dtype=int), rows[40:])
    (pred,) = run_classical(x, y, [fold], "logreg", rows=rows)
    np.testing.assert_array_equal(pred.rows, rows[40:])
    np.testing.assert_array_equal(pred.y_true, y[40:])
    missing = SimpleFold(1, np.array([5, 6]), np.array([], dtype=int), rows[40:])
    with pytest.raises(IndexError, match="without features"):
        run_classical(x, y, [missing], "logreg", rows=rows)


def test_one_class_training_fold_falls_back_to_majority() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 2))
    y = np.r_[np.ones(20, dtype=int), np.zeros(10, dtype=int)]
    fold = SimpleFold(0, np.arange(20), np.array([], dtype=int), np.arange(20, 30))
    (pred,) = run_classical(x, y, [fold], "logreg", n_classes=2)
    assert (pred.y_pred == 1).all() and pred.note


def test_unknown_classifier_and_bad_features_are_rejected() -> None:
    fold = SimpleFold(0, np.arange(2), np.array([], dtype=int), np.arange(2, 4))
    with pytest.raises(ValueError, match="unknown classifier"):
        run_classical(np.zeros((4, 1)), np.array([0, 1, 0, 1]), [fold], "knn")
    with pytest.raises(ValueError, match="NaN"):
        run_classical(np.full((4, 1), np.nan), np.array([0, 1, 0, 1]), [fold], "logreg")


def test_end_to_end_on_a_synthetic_dreamer_cache(tmp_path) -> None:
    # The real cache, protocol and feature code together: DE + ECG features of 5 s windows, stimulus folds.
    from physiosync.baselines.features import BANDS, ECG_FEATURES, extract_features
    from physiosync.config import ProtocolConfig, load_config
    from physiosync.data.cache import build_cache
    from physiosync.data.protocols import make_folds
    from physiosync.synth.dreamer import write_synthetic_dreamer

    write_synthetic_dreamer(tmp_path / "DREAMER.mat", n_subjects=2, n_trials=3, seed=0)
    cfg = load_config(overrides=["dataset.name=dreamer"])
    cfg.dataset.data_dir, cfg.cache_dir = tmp_path, tmp_path / "cache"
    cache = build_cache(cfg, progress=False)
    table = cache.windows(5.0)
    folds = make_folds(table, ProtocolConfig(name="stimulus-kfold", n_folds=3), seed=0)
    feats = extract_features(cache, 5.0, peripheral=True)
    n_eeg = cache.contract.eeg.n_chans * len(BANDS)
    assert feats.shape == (len(table), n_eeg + 2 * len(ECG_FEATURES))
    hr = feats[:, n_eeg::len(ECG_FEATURES)]  # both leads; the synthetic heart beats at 60-80 bpm
    assert 50.0 < np.median(hr) < 95.0

    preds = run_classical(feats, table.label("arousal"), folds, "logreg", seed=0)
    tested = np.sort(np.concatenate([p.rows for p in preds]))
    np.testing.assert_array_equal(tested, np.arange(len(table)))  # each window tested exactly once
    for p, f in zip(preds, folds, strict=True):
        assert not np.isin(p.rows, f.train).any()
        assert np.isfinite(p.proba).all()
