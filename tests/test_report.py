"""Report files: prediction tables round-trip, results.csv columns, the LEAKY banner only for `paper`,
paper numbers beside ours, plots written."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from physiosync.config import ProtocolConfig
from physiosync.metrics import majority_class
from physiosync.paper_results import TABLES, paper_reference
from physiosync.protocols import make_folds
from physiosync.report import (
    PREDICTION_COLUMNS,
    RESULTS_CSV_COLUMNS,
    read_predictions,
    results_from_predictions,
    write_predictions,
    write_report,
)
from physiosync.table import WindowTable


@pytest.fixture(scope="module")
def table() -> WindowTable:
    rng = np.random.default_rng(1)
    n_sub, n_tr = 4, 8
    val, aro = rng.uniform(1, 9, (n_sub, n_tr)), rng.uniform(1, 9, (n_sub, n_tr))
    la, lv = (aro >= 5).astype(int), (val >= 5).astype(int)
    return WindowTable.from_trials(np.tile(np.arange(n_tr), (n_sub, 1)), val, aro, la, lv, 2 * (1 - la) + (1 - lv), 3, 5.0)


def run_fake(tmp_path, table: WindowTable, protocol: str, labels=("arousal", "four")) -> dict:
    """Write predictions of a noisy 'model' for every fold and label; return results from them."""
    rng = np.random.default_rng(0)
    for f in make_folds(table, ProtocolConfig(name=protocol, n_folds=2 if protocol != "loso" else None), seed=0):
        test = table.select(f.test)
        for label in labels:
            k = 4 if label == "four" else 2
            logits = rng.normal(size=(len(test), k)) + 2 * np.eye(k)[test.label(label)]
            proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            write_predictions(tmp_path, f.index, label, test, proba, majority_class(table.label(label)[f.train]))
    return results_from_predictions(tmp_path, protocol)


META = {"dataset": "deap", "data_origin": "synthetic", "preset": "smoke", "seed": 0, "device": "cpu",
        "run_name": "t", "subjects": ["s01", "s02", "s03", "s04"]}


def test_prediction_table_round_trip(tmp_path, table: WindowTable) -> None:
    test = table.select(np.arange(6))
    proba = np.tile([[0.3, 0.7]], (6, 1))
    path = write_predictions(tmp_path, 3, "valence", test, proba, majority_class=0)
    assert path.name == "predictions_fold3_valence.csv"
    with open(path) as fh:
        header = next(csv.reader(fh))
    assert header == [*PREDICTION_COLUMNS, "p_0", "p_1"]
    back = read_predictions(path)
    np.testing.assert_array_equal(back["y_true"], test.label("valence"))
    np.testing.assert_array_equal(back["y_pred"], np.ones(6))
    np.testing.assert_allclose(back["proba"], proba)
    assert set(back["fold"]) == {3}


def test_report_files_and_columns(tmp_path, table: WindowTable) -> None:
    results = run_fake(tmp_path, table, "stimulus-kfold")
    results["history"] = {"pretrain": {"split a @1s": {"train": [3.0, 2.0, 1.5], "val": [3.1, 2.5, 2.2]}},
                          "finetune": {"arousal fold0": {"train": [0.7, 0.5]}}}
    written = write_report(tmp_path, results, META)
    for name in ("report.md", "results.json", "results.csv", "confusion_arousal.png", "subjects_four.png",
                 "curves_pretrain.png", "curves_finetune.png"):
        assert (tmp_path / name).stat().st_size > 0 and name in written
    with open(tmp_path / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == RESULTS_CSV_COLUMNS
    assert [r["label"] for r in rows] == ["arousal", "four"]
    assert rows[0]["ddof"] == "0" and rows[0]["n_folds"] == "2" and rows[0]["n_subjects"] == "4"
    assert rows[0]["f1_kind"] == "binary" and rows[1]["f1_kind"] == "weighted"
    doc = json.loads((tmp_path / "results.json").read_text())
    fold_acc = [f["accuracy"] for f in doc["labels"]["arousal"]["folds"]]
    assert float(rows[0]["accuracy_mean"]) == pytest.approx(np.mean(fold_acc))
    assert float(rows[0]["accuracy_std"]) == pytest.approx(np.std(fold_acc))
    assert doc["meta"]["dataset"] == "deap" and doc["protocol"]["name"] == "stimulus-kfold"
    assert sum(map(sum, doc["labels"]["four"]["confusion"])) == len(table)  # every row tested once
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# PhysioSync report") and "ddof = 0" in md and "Synthetic data" in md
    assert "LEAKY PROTOCOL" not in md
    assert "s03" in md  # per-subject table uses subject ids
    assert "Published numbers" in md and "98.35 ± 0.41" in md and "NOT comparable" in md
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_leak_warning_only_for_paper(tmp_path, table: WindowTable) -> None:
    results = run_fake(tmp_path / "paper", table, "paper", labels=("valence",))
    assert results["protocol"]["leaky"]
    write_report(tmp_path / "paper", results, META)
    md = (tmp_path / "paper" / "report.md").read_text()
    assert "LEAKY PROTOCOL" in md and md.index("LEAKY") < md.index("## Protocol")
    results = run_fake(tmp_path / "loso", table, "loso", labels=("valence",))
    write_report(tmp_path / "loso", results, {**META, "dataset": "dreamer", "data_origin": "real"})
    md = (tmp_path / "loso" / "report.md").read_text()
    assert "LEAKY" not in md and "Table C — cross-subject (DREAMER)" in md and "63.24 ± 8.56" in md


def test_paper_tables_have_ours_rows_and_consistent_widths() -> None:
    for (dataset, setting), t in TABLES.items():
        assert any(r[0] == "Ours (PhysioSync)" for r in t["rows"])
        assert all(len(r[3]) == len(t["columns"]) for r in t["rows"]), (dataset, setting)
    assert paper_reference("deap", "paper")["ours"]["four"]["f1"] == (97.99, 0.48)
    assert paper_reference("other", "loso") is None
