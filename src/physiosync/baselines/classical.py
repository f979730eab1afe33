"""Classical baselines on feature matrices: majority class, logistic regression, RBF-SVM.

Every model is an sklearn pipeline whose scaler sits *inside* the pipeline, so standardisation statistics
come from a fold's training rows only (evaluation-protocols.md §2: nothing from a test fold may reach
normalisation). :func:`run_classical` fits a fresh pipeline per fold on ``fold.train`` and predicts
``fold.test``; validation rows are not used (these models have no epochs or early stopping to select).

Probabilities: the SVM gets no Platt scaling (sklearn's ``probability=True``, deprecated since 1.9 in
favour of ``CalibratedClassifierCV``) because calibration runs an internal 5-fold cross-validation, about
5× the fit time on ~14k DEAP windows per fold. Its ``proba`` is
therefore the one-hot encoding of the hard prediction — good for accuracy/F1, not for ranking metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

CLASSIFIERS = ("majority", "logreg", "svm-rbf")


class FoldLike(Protocol):
    """What :func:`run_classical` reads from a ``physiosync.data.protocols.Fold`` (contract 5)."""

    index: int
    train: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class FoldPrediction:
    """Test-set predictions of one fold.

    Attributes:
        fold: The fold's index.
        rows: Row indices (into the WindowTable the folds index) of the test windows. Shape: (n_test,).
        y_true: True labels. Shape: (n_test,).
        y_pred: Predicted labels. Shape: (n_test,).
        proba: Class probabilities, one column per class ``0..n_classes-1``. Shape: (n_test, n_classes).
        note: Empty, or why the fold deviated (e.g. a one-class training set fell back to majority).
    """

    fold: int
    rows: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    note: str = ""


def make_classifier(name: str, seed: int = 0) -> Pipeline:
    """A fresh, unfitted pipeline for ``majority``, ``logreg`` or ``svm-rbf``.

    ``logreg`` and ``svm-rbf`` standardise features first (inside the pipeline: fitted on training data
    only); ``majority`` predicts the most frequent training class and needs no scaling.
    """
    if name == "majority":
        return Pipeline([("model", DummyClassifier(strategy="most_frequent"))])
    if name == "logreg":
        return Pipeline([("scale", StandardScaler()),
                         ("model", LogisticRegression(C=1.0, max_iter=2000, random_state=seed))])
    if name == "svm-rbf":
        return Pipeline([("scale", StandardScaler()),
                         ("model", SVC(C=1.0, kernel="rbf", gamma="scale", random_state=seed))])
    raise ValueError(f"unknown classifier {name!r}; expected one of {CLASSIFIERS}")


def _predict_proba(clf: Pipeline, x: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Hard predictions and an ``(n, n_classes)`` probability matrix aligned to class ids 0..n_classes-1.

    Columns of classes absent from the training fold are zero (sklearn only reports classes it saw).
    """
    y_pred = clf.predict(x)
    classes = np.asarray(clf.classes_, dtype=np.int64)
    proba = np.zeros((len(x), n_classes))
    if hasattr(clf, "predict_proba") and not isinstance(clf[-1], SVC):
        proba[:, classes] = clf.predict_proba(x)
    else:
        proba[np.arange(len(x)), y_pred.astype(np.int64)] = 1.0
    return y_pred, proba


def run_classical(
    features: np.ndarray,
    labels: np.ndarray,
    folds: Sequence[FoldLike],
    name: str,
    seed: int = 0,
    rows: np.ndarray | None = None,
    n_classes: int | None = None,
) -> list[FoldPrediction]:
    """Fit ``name`` on each fold's training rows and predict its test rows.

    Per-subject protocols need nothing special: their folds already list only one subject's rows, and
    every fold gets a fresh pipeline.

    Args:
        features: Feature matrix, one row per entry of ``rows``. Shape: (n, n_features).
        labels: Integer class labels aligned with ``features``. Shape: (n,).
        folds: Folds whose ``train``/``test`` are row indices into the WindowTable.
        name: ``majority``, ``logreg`` or ``svm-rbf``.
        seed: Random state of the estimators.
        rows: WindowTable row index of each feature row, when features were extracted for a subset of
            the table. Shape: (n,). None = ``features`` row i is table row i.
        n_classes: Number of classes (probability columns); None = ``labels.max() + 1``.

    Returns:
        One :class:`FoldPrediction` per fold, in the order of ``folds``.
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; expected one of {CLASSIFIERS}")
    features = np.asarray(features)
    labels = np.asarray(labels).astype(np.int64)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"features must be (n, n_features) aligned with labels; got {features.shape} "
                         f"and {labels.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or inf")
    n_classes = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    if rows is None:
        position = None
    else:
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) != len(features):
            raise ValueError(f"rows has {len(rows)} entries for {len(features)} feature rows")
        position = np.full(int(rows.max()) + 1, -1, dtype=np.int64)
        position[rows] = np.arange(len(rows))

    def locate(idx: np.ndarray, fold: int, part: str) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        limit = len(features) if position is None else len(position)
        if idx.size and (idx.min() < 0 or idx.max() >= limit):
            raise IndexError(f"fold {fold} {part} rows fall outside the feature matrix")
        if position is None:
            return idx
        pos = position[idx]
        if (pos < 0).any():
            raise IndexError(f"fold {fold} {part} uses rows without features")
        return pos

    out = []
    for fold in folds:
        tr = locate(fold.train, fold.index, "train")
        te = locate(fold.test, fold.index, "test")
        note = ""
        clf_name = name
        if name != "majority" and len(np.unique(labels[tr])) < 2:
            # A one-class training set (possible in per-subject folds) cannot fit a discriminative model;
            # predicting that class is what any model would learn.
            clf_name, note = "majority", "one class in training rows: predicted the training class"
        clf = make_classifier(clf_name, seed)
        clf.fit(features[tr], labels[tr])
        y_pred, proba = _predict_proba(clf, features[te], n_classes)
        out.append(FoldPrediction(fold=int(fold.index), rows=np.asarray(fold.test, dtype=np.int64),
                                  y_true=labels[te], y_pred=np.asarray(y_pred, dtype=np.int64),
                                  proba=proba, note=note))
    return out
