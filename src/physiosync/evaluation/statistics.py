"""Is a number better than chance, and does one row differ from another? (evaluation-protocols §3, §4)

Two questions every reported accuracy has to answer, kept apart from the metrics themselves:

- *chance*: a seeded label-permutation estimate (:func:`permutation_chance`), pooled over the test
  predictions of all folds and permuted between whole trials (:func:`chance_block`), shown next to the
  majority baseline in ``report.md`` and ``comparison.md``;
- *paired difference*: a Wilcoxon signed-rank test of one ``compare`` row against the reference row, on
  the same folds (:func:`paired_test`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from physiosync.evaluation.metrics import group_keys

# Label permutations per chance estimate: the smallest p is 1 / 201 ≈ 0.005, and the Monte-Carlo error of
# chance_mean is chance_std / sqrt(200) (≈ 0.3 points for a typical 4-point spread).
CHANCE_PERMUTATIONS = 200
CHANCE_METHOD = ("accuracy of the test predictions of all folds pooled, against the true labels permuted between "
                 "whole test trials (subject, trial); mean and std over seeded permutations")
MIN_FOLD_PAIRS = 6  # below this many folds the paired test uses subjects (n = 5 cannot reach p < 0.05)


def permutation_chance(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_permutations: int = 1000,
    seed: int = 0,
    group_ids: np.ndarray | None = None,
) -> dict[str, Any]:
    """Chance accuracy by permuting the true labels (seeded); p-value of the observed accuracy.

    Windows of one trial share a label and are not exchangeable, so with ``group_ids`` whole groups'
    labels are permuted (the label of a group is that of its first window).

    Shape: y_true, y_pred (n,); group_ids (n,) or (n, 2).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    rng = np.random.default_rng(seed)
    observed = float(np.mean(y_true == y_pred))
    if group_ids is None:
        perms = np.array([np.mean(rng.permutation(y_true) == y_pred) for _ in range(n_permutations)])
    else:
        g = group_keys(group_ids)
        first = np.unique(g, return_index=True)[1]
        glabel = y_true[first]
        perms = np.array([np.mean(rng.permutation(glabel)[g] == y_pred) for _ in range(n_permutations)])
    return {
        "observed": observed,
        "chance_mean": float(perms.mean()),
        "chance_std": float(perms.std()),
        "p_value": float((1 + np.sum(perms >= observed)) / (1 + n_permutations)),
        "n_permutations": int(n_permutations),
        "seed": int(seed),
    }


def chance_block(
    predictions: list[dict[str, Any]], seed: int, n_permutations: int = CHANCE_PERMUTATIONS
) -> dict[str, Any] | None:
    """Label-permutation estimate of chance for one label, from per-fold prediction columns.

    Why pooled and by trial: a single fold can hold only a few test trials, too few to permute, and the
    windows of one trial share a label, so permuting windows would understate the spread of chance.
    The model's predictions stay fixed; what is shuffled is which trial has which true label.

    Returns:
        :func:`permutation_chance` (``observed`` = pooled accuracy, ``chance_mean``, ``chance_std``,
        ``p_value``, ``n_permutations``, ``seed``) plus ``method`` (one line saying the above), or None
        without test rows.
    """
    if not predictions or sum(len(p["y_true"]) for p in predictions) == 0:
        return None
    y_true = np.concatenate([p["y_true"] for p in predictions])
    y_pred = np.concatenate([p["y_pred"] for p in predictions])
    groups = np.concatenate([np.stack([p["subject"], p["trial"]], axis=1) for p in predictions])
    out = permutation_chance(y_true, y_pred, n_permutations=n_permutations, seed=seed, group_ids=groups)
    return {**out, "method": CHANCE_METHOD}


def paired_test(block: dict[str, Any], ref: dict[str, Any], min_folds: int = MIN_FOLD_PAIRS) -> dict[str, Any]:
    """Wilcoxon signed-rank test of a row's accuracy against the reference row's, paired by fold.

    With fewer than ``min_folds`` common folds the pairs are per-subject accuracies (from the predictions
    of all folds) instead. Returns ``unit`` (``folds``/``subjects``), ``statistic``, ``p_value``, ``n``
    (pairs) and ``note`` (why a number is missing, e.g. every difference is zero).

    Args:
        block, ref: ``results["labels"][label]`` blocks (:func:`physiosync.evaluation.report.summarise_label`)
            of the row and of the reference row.
    """
    from scipy.stats import wilcoxon

    a = {f["fold"]: f["accuracy"] for f in block["folds"]}
    b = {f["fold"]: f["accuracy"] for f in ref["folds"]}
    unit = "folds"
    if len(set(a) & set(b)) < min_folds:
        unit = "subjects"
        a = {s["subject"]: s["accuracy"] for s in block["subjects"]["per_subject"]}
        b = {s["subject"]: s["accuracy"] for s in ref["subjects"]["per_subject"]}
    keys = sorted(set(a) & set(b))
    x, y = np.array([a[k] for k in keys], dtype=float), np.array([b[k] for k in keys], dtype=float)
    out: dict[str, Any] = {"unit": unit, "statistic": None, "p_value": None, "n": len(keys), "note": ""}
    if len(keys) == 0:
        out["note"] = "no common pairs"
    elif np.all(x == y):
        out["note"] = "all paired differences are zero"
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = wilcoxon(x, y)
        out.update(statistic=float(res.statistic), p_value=float(res.pvalue))
    return out
