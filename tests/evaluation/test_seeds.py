"""Results over seeds: the pooled (seed, fold) statistics and the paired tests, checked in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from physiosync.evaluation.seeds import (
    render_seed_comparison,
    render_seed_results,
    seed_comparison,
    seed_results,
)


def block(accs: list[float], subjects: dict[int, float] | None = None) -> dict:
    """A label block as summarise_label makes it, reduced to what the seed summary reads."""
    folds = [{"fold": i, "accuracy": a, "balanced_accuracy": a / 2, "majority_class": 0, "confusion": [[1]]}
             for i, a in enumerate(accs)]
    return {"n_classes": 2, "folds": folds,
            "summary": {"n_folds": len(accs), "accuracy": {"mean": float(np.mean(accs)), "std": float(np.std(accs))},
                        "balanced_accuracy": {"mean": float(np.mean(accs)) / 2}},
            "subjects": {"per_subject": [{"subject": s, "accuracy": a} for s, a in (subjects or {}).items()]}}


def test_pooled_mean_and_std_are_over_seed_fold_pairs_and_between_seeds_over_seed_means() -> None:
    per_seed = {0: [0.5, 0.7], 1: [0.6, 0.9], 2: [0.4, 0.4]}
    doc = seed_results({s: {"protocol": {"name": "loso"}, "labels": {"arousal": block(a)}} for s, a in per_seed.items()})
    b = doc["labels"]["arousal"]
    pairs = [0.5, 0.7, 0.6, 0.9, 0.4, 0.4]
    # population (ddof 0) statistics of six numbers, in float64: exact up to rounding of a few additions
    assert b["summary"]["accuracy"]["mean"] == pytest.approx(sum(pairs) / 6, abs=1e-12)
    assert b["summary"]["accuracy"]["std"] == pytest.approx(np.sqrt(np.mean((np.array(pairs) - 0.5833333333333334) ** 2)),
                                                            abs=1e-12)
    assert b["summary"]["n_folds"] == 6 and b["summary"]["balanced_accuracy"]["mean"] == pytest.approx(sum(pairs) / 12)
    means = [0.6, 0.75, 0.4]
    assert b["between_seeds"]["accuracy"]["mean"] == pytest.approx(np.mean(means), abs=1e-12)
    assert b["between_seeds"]["accuracy"]["std"] == pytest.approx(np.std(means), abs=1e-12)
    assert [(f["seed"], f["fold"]) for f in b["folds"]] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    assert "majority_class" not in b["summary"]
    assert "| arousal |" in render_seed_results(doc) and "## arousal: per seed" in render_seed_results(doc)


def test_paired_test_pairs_seed_fold_then_falls_back_to_seed_subject() -> None:
    from scipy.stats import wilcoxon

    ref = {0: [0.9, 0.8, 0.85], 1: [0.7, 0.95, 0.6]}
    row = {0: [0.5, 0.6, 0.55], 1: [0.4, 0.5, 0.65]}
    docs = {s: {"results": {"physiosync": {"labels": {"arousal": block(ref[s])}},
                            "majority": {"labels": {"arousal": block(row[s])}}}} for s in ref}
    doc = seed_comparison(docs)
    t = doc["rows"]["majority"]["arousal"]["test"]
    want = wilcoxon([0.5, 0.6, 0.55, 0.4, 0.5, 0.65], [0.9, 0.8, 0.85, 0.7, 0.95, 0.6])
    assert t["unit"] == "(seed, fold) pairs" and t["n"] == 6
    assert t["p_value"] == pytest.approx(want.pvalue, abs=1e-12)
    assert doc["rows"]["physiosync"]["arousal"]["test"] is None
    line = next(x for x in doc["table"] if x["row"] == "majority")
    assert line["per_seed_accuracy"] == {"0": pytest.approx(0.55), "1": pytest.approx(np.mean(row[1]))}
    # two folds per seed: 4 (seed, fold) pairs < 6, so (seed, subject) pairs are tested instead
    subj_ref, subj_row = {0: 0.9, 1: 0.8, 2: 0.7}, {0: 0.5, 1: 0.6, 2: 0.65}
    docs = {s: {"results": {"physiosync": {"labels": {"arousal": block([0.8, 0.9], subj_ref)}},
                            "majority": {"labels": {"arousal": block([0.5, 0.6], subj_row)}}}} for s in (0, 1)}
    t = seed_comparison(docs)["rows"]["majority"]["arousal"]["test"]
    assert t["unit"] == "(seed, subject) pairs" and t["n"] == 6
    assert "(seed, subject) pairs" in render_seed_comparison(seed_comparison(docs))
