"""Classification metrics computed over *all* test samples of a fold, and their aggregation.

The authors averaged accuracy and F1 over shuffled test batches (method-spec D11); F1 of a batch mean is not
the F1 of the fold, so here every metric is computed once on the concatenated predictions of a fold.
:func:`batch_mean_metrics` reproduces the authors' per-batch figure only so the difference can be shown.
Fold-level numbers are summarised as mean ± std across folds with ``ddof = 0`` (population std, as the
paper's ``np.std``), and per-subject numbers from the concatenated predictions of all folds. Evaluation-
protocols §3 asks for a majority-class baseline on the same folds beside every result and trial-level
majority-vote accuracy (here), and a label-permutation estimate of chance
(:mod:`physiosync.evaluation.statistics`).

Metric dicts are plain JSON-able dicts (floats, ints, lists) so they go straight into ``results.json``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

DDOF = 0  # population std across folds/subjects, as the paper (np.std); stated in every summary
SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "f1", "f1_macro", "trial_vote_accuracy", "majority_accuracy")


def _to_pred(y_pred_or_proba: np.ndarray) -> np.ndarray:
    """Class predictions from labels (n,) or probabilities/logits (n, K) (argmax)."""
    a = np.asarray(y_pred_or_proba)
    return a.argmax(axis=1).astype(np.int64) if a.ndim == 2 else a.astype(np.int64)


def f1_kind(n_classes: int) -> str:
    """Which F1 is the headline: binary (positive = 1 = "high") for 2 classes, weighted otherwise (D10)."""
    return "binary" if n_classes == 2 else "weighted"


def fold_metrics(y_true: np.ndarray, y_pred_or_proba: np.ndarray, n_classes: int) -> dict[str, Any]:
    """Accuracy, balanced accuracy, F1 and confusion matrix over every test sample of one fold.

    Args:
        y_true: Integer labels. Shape: (n,).
        y_pred_or_proba: Predicted labels, Shape: (n,), or class probabilities, Shape: (n, K).
        n_classes: K; fixes the confusion-matrix size and the F1 kind even if a class is absent.

    Returns:
        ``n``, ``accuracy``, ``balanced_accuracy``, ``f1`` (binary for K = 2, weighted otherwise),
        ``f1_kind``, ``f1_macro``, ``f1_weighted``, ``confusion`` (K×K counts, rows = true class).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = _to_pred(y_pred_or_proba)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and predictions {y_pred.shape} differ in length")
    labels = list(range(n_classes))
    with warnings.catch_warnings():
        # a fold may lack a class (e.g. one subject's test trials): sklearn warns, the number is still right
        warnings.simplefilter("ignore")
        kind = f1_kind(n_classes)
        out = {
            "n": int(y_true.size),
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "f1": float(
                f1_score(y_true, y_pred, average="binary", pos_label=1, zero_division=0)
                if kind == "binary"
                else f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
            ),
            "f1_kind": kind,
            "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
            "f1_weighted": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
            "confusion": confusion_matrix(y_true, y_pred, labels=labels).astype(int).tolist(),
        }
    return out


def batch_mean_metrics(
    y_true: np.ndarray, y_pred_or_proba: np.ndarray, n_classes: int, batch_size: int = 256
) -> dict[str, float]:
    """The authors' figure (D11): accuracy and F1 per consecutive test batch, then the mean over batches.

    For comparison only; reports use :func:`fold_metrics`. Shape: y_true (n,), predictions (n,) or (n, K).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = _to_pred(y_pred_or_proba)
    per = [
        fold_metrics(y_true[i:i + batch_size], y_pred[i:i + batch_size], n_classes)
        for i in range(0, y_true.size, batch_size)
    ]
    return {"accuracy": float(np.mean([m["accuracy"] for m in per])), "f1": float(np.mean([m["f1"] for m in per]))}


def group_keys(group_ids: np.ndarray) -> np.ndarray:
    """Row -> dense group index from (n,) ids or (n, k) id tuples such as (subject, trial)."""
    g = np.asarray(group_ids)
    if g.ndim == 1:
        return np.unique(g, return_inverse=True)[1].reshape(-1)
    return np.unique(g, axis=0, return_inverse=True)[1].reshape(-1)


def trial_vote_accuracy(y_true: np.ndarray, y_pred: np.ndarray, group_ids: np.ndarray) -> float:
    """Accuracy of one majority vote per trial over its windows' predictions.

    Ties go to the lowest class index (deterministic). A trial's true label is its most frequent window
    label (constant within a trial for DEAP/DREAMER).

    Args:
        y_true, y_pred: Integer labels per window. Shape: (n,).
        group_ids: Trial identity per window. Shape: (n,) or (n, 2) for (subject, trial).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.size == 0:
        return float("nan")
    g = group_keys(group_ids)
    n_g, k = int(g.max()) + 1, int(max(y_true.max(), y_pred.max())) + 1
    votes = np.zeros((n_g, k), dtype=np.int64)
    truth = np.zeros((n_g, k), dtype=np.int64)
    np.add.at(votes, (g, y_pred), 1)
    np.add.at(truth, (g, y_true), 1)
    return float(np.mean(votes.argmax(axis=1) == truth.argmax(axis=1)))


def majority_class(train_labels: np.ndarray) -> int:
    """Most frequent training label (ties -> lowest class index)."""
    return int(np.bincount(np.asarray(train_labels, dtype=np.int64)).argmax())


def majority_baseline(train_labels: np.ndarray, test_labels: np.ndarray, n_classes: int | None = None) -> dict[str, Any]:
    """Metrics of always predicting the training majority class on the same test samples.

    Shape: train_labels (n_train,), test_labels (n_test,). Returns :func:`fold_metrics` plus
    ``majority_class``.
    """
    test_labels = np.asarray(test_labels, dtype=np.int64)
    k = n_classes or int(max(np.max(train_labels), test_labels.max(initial=0))) + 1
    c = majority_class(train_labels)
    return {**fold_metrics(test_labels, np.full(test_labels.shape, c), k), "majority_class": c}


def summarise(values: list[float] | np.ndarray, ddof: int = DDOF) -> dict[str, Any]:
    """Mean ± std of finite values (NaN = not available, e.g. no trials to vote on), with ddof stated."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0, "ddof": ddof}
    std = float(np.std(v, ddof=ddof)) if v.size > ddof else None
    return {"mean": float(np.mean(v)), "std": std, "n": int(v.size), "ddof": ddof}


def aggregate(per_fold: list[dict[str, Any]], ddof: int = DDOF) -> dict[str, Any]:
    """Mean ± std across folds of every numeric scalar metric (``ddof`` = 0 to match the paper).

    Args:
        per_fold: One dict per fold, e.g. :func:`fold_metrics` plus ``trial_vote_accuracy`` and
            ``majority_accuracy``.

    Returns:
        ``{metric: {"mean", "std", "n", "ddof"}, ..., "n_folds": int, "ddof": int}``.
    """
    out: dict[str, Any] = {"n_folds": len(per_fold), "ddof": ddof}
    keys = [k for k in (per_fold[0] if per_fold else {}) if k not in ("n", "fold")]
    for key in keys:
        vals = [m.get(key) for m in per_fold]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals if v is not None):
            out[key] = summarise([np.nan if v is None else v for v in vals], ddof)
    return out


def subject_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    subject: np.ndarray,
    n_classes: int,
    trial: np.ndarray | None = None,
    y_majority: np.ndarray | None = None,
    ddof: int = DDOF,
) -> dict[str, Any]:
    """Per-subject metrics from the concatenated predictions of all folds, and mean ± std across subjects.

    Args:
        y_true, y_pred, subject: Shape: (n,) each (all test rows of all folds).
        trial: Shape: (n,); enables per-subject trial-vote accuracy.
        y_majority: Shape: (n,); the majority-baseline prediction of each row's fold.

    Returns:
        ``{"per_subject": [{"subject": int, "n", "accuracy", ...}], "summary": aggregate(...), "ddof"}``.
    """
    y_true, y_pred, subject = (np.asarray(a, dtype=np.int64) for a in (y_true, y_pred, subject))
    rows = []
    for s in np.unique(subject):
        m = subject == s
        r = {"subject": int(s), **fold_metrics(y_true[m], y_pred[m], n_classes)}
        r.pop("confusion")
        if trial is not None:
            r["trial_vote_accuracy"] = trial_vote_accuracy(y_true[m], y_pred[m], np.asarray(trial)[m])
        if y_majority is not None:
            r["majority_accuracy"] = float(np.mean(np.asarray(y_majority)[m] == y_true[m]))
        rows.append(r)
    summary = aggregate([{k: v for k, v in r.items() if k != "subject"} for r in rows], ddof)
    summary["n_subjects"] = summary.pop("n_folds")
    return {"per_subject": rows, "summary": summary, "ddof": ddof}
