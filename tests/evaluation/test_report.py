"""Report files: prediction tables round-trip, results.csv columns, the LEAKY banner only for `paper`,
permutation chance beside the majority baseline, paper numbers only for the official release, readable plots."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from physiosync.config import ProtocolConfig, load_config
from physiosync.data.labels import dataset_tasks
from physiosync.data.protocols import make_folds
from physiosync.data.table import WindowTable
from physiosync.errors import ConfigError
from physiosync.evaluation.metrics import majority_class
from physiosync.evaluation.paper_results import TABLES, paper_reference
from physiosync.evaluation.report import (
    PREDICTION_COLUMNS,
    RESULTS_CSV_COLUMNS,
    confusion_figure,
    curves_figure,
    read_predictions,
    results_from_predictions,
    subjects_figure,
    write_predictions,
    write_report,
)
from physiosync.evaluation.statistics import permutation_chance


@pytest.fixture(scope="module")
def table() -> WindowTable:
    rng = np.random.default_rng(1)
    n_sub, n_tr = 4, 8
    val, aro = rng.uniform(1, 9, (n_sub, n_tr)), rng.uniform(1, 9, (n_sub, n_tr))
    la, lv = (aro >= 5).astype(int), (val >= 5).astype(int)
    return WindowTable.from_trials(np.tile(np.arange(n_tr), (n_sub, 1)), {"valence": val, "arousal": aro},
                                   {"arousal": la, "valence": lv, "four": 2 * (1 - la) + (1 - lv)}, 3, 5.0)


def run_fake(tmp_path, table: WindowTable, protocol: str, labels=("arousal", "four"), chance_seed=None) -> dict:
    """Write predictions of a noisy 'model' for every fold and label; return results from them."""
    rng = np.random.default_rng(0)
    for f in make_folds(table, ProtocolConfig(name=protocol, n_folds=2 if protocol != "loso" else None), seed=0):
        test = table.select(f.test)
        for label in labels:
            k = 4 if label == "four" else 2
            logits = rng.normal(size=(len(test), k)) + 2 * np.eye(k)[test.label(label)]
            proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            write_predictions(tmp_path, f.index, label, test, proba, majority_class(table.label(label)[f.train]))
    return results_from_predictions(tmp_path, protocol, chance_seed=chance_seed, tasks=dataset_tasks("deap"))


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
    results["history"] = {
        "pretrain": {"1s-f91420204e11d724-d01ca4ebebc0": {"panel": "1 s windows", "window_s": 1.0, "folds": [0],
                                                          "curves": {"train loss": [3.0, 2.0, 1.5],
                                                                     "val loss": [3.1, 2.5, 2.2]}}},
        "finetune": {"arousal/fold00": {"panel": "arousal", "folds": [0], "curves": {"train loss": [0.7, 0.5]}}},
    }
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
    # own recordings: the report names the dataset file's dataset, beside the reader
    write_report(tmp_path / "own", results, {**META, "dataset": "recordings", "dataset_name": "my-study"})
    assert "| my-study (recordings) | synthetic |" in (tmp_path / "own" / "report.md").read_text()
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# PhysioSync report") and "ddof = 0" in md and "Synthetic data" in md
    assert "LEAKY PROTOCOL" not in md
    assert "s03" in md  # per-subject table uses subject ids
    assert "## Published numbers" not in md and "98.35" not in md  # synthetic data: no paper table
    assert "are not shown: the data origin is `synthetic`" in md
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_leak_warning_only_for_paper(tmp_path, table: WindowTable) -> None:
    results = run_fake(tmp_path / "paper", table, "paper", labels=("valence",))
    assert results["protocol"]["leaky"]
    write_report(tmp_path / "paper", results, META)
    md = (tmp_path / "paper" / "report.md").read_text()
    assert "LEAKY PROTOCOL" in md and md.index("LEAKY") < md.index("## Protocol")
    results = run_fake(tmp_path / "loso", table, "loso", labels=("valence",))
    write_report(tmp_path / "loso", results, {**META, "dataset": "dreamer", "data_origin": "release"})
    md = (tmp_path / "loso" / "report.md").read_text()
    assert "LEAKY" not in md and "Table C — cross-subject (DREAMER)" in md and "63.24 ± 8.56" in md


def test_paper_tables_have_ours_rows_and_consistent_widths() -> None:
    for (dataset, setting), t in TABLES.items():
        assert any(r[0] == "Ours (PhysioSync)" for r in t["rows"])
        assert all(len(r[3]) == len(t["columns"]) for r in t["rows"]), (dataset, setting)
    assert paper_reference("deap", "paper")["ours"]["four"]["f1"] == (97.99, 0.48)
    assert paper_reference("other", "loso") is None


# --------------------------------------------------------------------------------------------------
# permutation chance beside the majority baseline


def md_table(md: str, first_header: str) -> list[dict[str, str]]:
    """The markdown table whose header starts with ``| first_header |``, as dicts of cell text."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip().strip("|").split("|")])
    return [dict(zip(block[0], row, strict=True)) for row in block[2:]]


def test_report_shows_the_permutation_chance_of_results_json(tmp_path, table: WindowTable) -> None:
    results = run_fake(tmp_path, table, "stimulus-kfold", chance_seed=7)
    write_report(tmp_path, results, META)
    doc = json.loads((tmp_path / "results.json").read_text())
    for label in ("arousal", "four"):
        # reference: the prediction files of all folds pooled by hand, whole (subject, trial) units permuted
        rows = [r for p in sorted((tmp_path / "predictions").glob(f"*_{label}.csv")) for r in csv.DictReader(open(p))]
        y_true, y_pred = (np.array([int(r[k]) for r in rows]) for k in ("y_true", "y_pred"))
        groups = np.array([(int(r["subject"]), int(r["trial"])) for r in rows])
        want = permutation_chance(y_true, y_pred, n_permutations=200, seed=7, group_ids=groups)
        got = doc["labels"][label]["chance"]
        assert {k: got[k] for k in want} == want and "whole test trials" in got["method"]
    md = (tmp_path / "report.md").read_text()
    header = md_table(md, "label")
    by = {r["label"]: r for r in header}
    cols = list(header[0])
    assert cols.index("permutation chance") == cols.index("majority baseline") + 1  # beside the baseline
    for label, r in by.items():
        ch = doc["labels"][label]["chance"]
        assert r["permutation chance"] == f"{100 * ch['chance_mean']:.2f} ± {100 * ch['chance_std']:.2f}"
        assert r["p (perm.)"] == f"{ch['p_value']:.3g}"
    assert "*Permutation chance*: accuracy of the run's own test predictions (all folds pooled)" in md
    assert "200 seeded permutations" in md
    with open(tmp_path / "results.csv") as fh:
        csv_rows = {r["label"]: r for r in csv.DictReader(fh)}
    assert float(csv_rows["four"]["chance_mean"]) == pytest.approx(doc["labels"]["four"]["chance"]["chance_mean"])
    assert float(csv_rows["four"]["chance_p"]) == pytest.approx(doc["labels"]["four"]["chance"]["p_value"])


def test_without_a_seed_there_is_no_chance_and_the_report_says_dash(tmp_path, table: WindowTable) -> None:
    results = run_fake(tmp_path, table, "stimulus-kfold", labels=("valence",))
    assert "chance" not in results["labels"]["valence"]
    write_report(tmp_path, results, META)
    row = md_table((tmp_path / "report.md").read_text(), "label")[0]
    assert row["permutation chance"] == "—" and row["p (perm.)"] == "—"


# --------------------------------------------------------------------------------------------------
# the paper's table only for the official release


@pytest.mark.parametrize("origin", ["release", "user", "synthetic", None])
@pytest.mark.parametrize(("dataset", "protocol", "title"), [
    ("deap", "stimulus-kfold", "Table A — DEAP, subject-dependent"),
    ("dreamer", "loso", "Table C — cross-subject (DREAMER)"),
])
def test_published_numbers_only_for_origin_release(tmp_path, table: WindowTable, origin, dataset, protocol,
                                                   title) -> None:
    results = run_fake(tmp_path, table, protocol, labels=("arousal",))
    meta = {**META, "dataset": dataset, "data_origin": origin}
    write_report(tmp_path, results, meta)
    md = (tmp_path / "report.md").read_text()
    if origin == "release":
        assert f"## Published numbers ({title})" in md and "not shown" not in md
    else:
        assert "## Published numbers" not in md and "| paper accuracy |" not in md
        assert f"({title}) are not shown: the data origin is `{origin}`" in md


def test_origin_default_is_user_and_old_real_is_a_clear_error() -> None:
    assert load_config(None).dataset.origin == "user"  # a wrong "release" claim is worse than a missing table
    with pytest.raises(ConfigError, match=r"dataset\.origin.*'release' \(the official DEAP/DREAMER files\)"):
        load_config(None, overrides=["dataset.origin=real"])
    with pytest.raises(ConfigError, match="dataset.origin"):
        load_config(None, overrides=["dataset.origin=official"])


def test_shipped_configs_for_the_real_data_say_release() -> None:
    configs = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
    assert len(configs) >= 6
    for path in configs:
        assert load_config(path).dataset.origin == "release", path.name


def test_correcting_the_origin_does_not_invalidate_a_run_dir(tmp_path) -> None:
    from physiosync.experiments.pipeline import write_run_config

    cfg = load_config(None, overrides=["dataset.origin=user"])
    write_run_config(cfg, tmp_path)
    write_run_config(load_config(None, overrides=["dataset.origin=release"]), tmp_path)  # a claim, not an input
    assert "origin: release" in (tmp_path / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="different configuration"):
        write_run_config(load_config(None, overrides=["seed=1"]), tmp_path)


# --------------------------------------------------------------------------------------------------
# plots

HASHY = re.compile(r"[0-9a-f]{10,}")


def figure_texts(fig) -> list[str]:
    """Every text a reader sees: titles, axis labels, tick labels, legend entries and titles."""
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        if ax.get_legend():
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    for leg in fig.legends:
        out += [t.get_text() for t in leg.get_texts()] + [leg.get_title().get_text()]
    return out


def pretrain_history(n_folds: int, windows=(1.0, 5.0), epochs: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {f"{w:g}s-{rng.bytes(8).hex()}-d01ca4ebebc0": {
        "panel": f"{w:g} s windows", "window_s": w, "folds": [k],
        "curves": {"train loss": list(10 - np.arange(epochs) + rng.normal(size=epochs)),
                   "val loss": list(11 - np.arange(epochs) + rng.normal(size=epochs))}}
        for k in range(n_folds) for w in windows}


def test_pretrain_curves_one_panel_per_window_labelled_by_fold_not_hash() -> None:
    history = pretrain_history(3)
    fig = curves_figure("pretrain", history)
    assert len(fig.axes) == 2
    assert [ax.get_title() for ax in fig.axes] == ["pre-training: 1 s windows", "pre-training: 5 s windows"]
    for ax in fig.axes:
        assert ax.get_xlabel() == "epoch" and "loss" in ax.get_ylabel()
        assert all(float(t).is_integer() for t in ax.get_xticks()), "epochs are whole numbers"
        # 3 folds x (train, val) thin lines + bold mean train and val
        widths = sorted(line.get_linewidth() for line in ax.get_lines())
        assert len(widths) == 8 and widths[-2:] == [2.4, 2.4] and max(widths[:-2]) < 2.4
        assert ax.get_legend() is None  # the legend is outside the panels, never over the curves
    texts = figure_texts(fig)
    assert not [t for t in texts if HASHY.search(t)]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["fold 0", "fold 1", "fold 2"] and "val loss" in legend and "train loss" in legend
    # the bold mean is the mean of the fold curves
    ax = fig.axes[0]
    mean = max(ax.get_lines(), key=lambda line: (line.get_linewidth(), line.get_linestyle() == "-"))
    folds = [v["curves"]["train loss"] for v in history.values() if v["window_s"] == 1.0]
    np.testing.assert_allclose(mean.get_ydata(), np.mean(folds, axis=0), rtol=1e-12)  # float64 throughout


def test_curves_with_many_folds_or_shared_pretrainings_stay_readable() -> None:
    fig = curves_figure("finetune", {f"arousal/fold{k:02d}": {"panel": "arousal", "folds": [k],
                                                               "curves": {"train loss": [1.0, 0.5]}} for k in range(23)})
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) <= 4 and "each fold (23)" in legend  # not 23 colour entries
    shared = {"a": {"panel": "1 s windows", "window_s": 1.0, "folds": [2, 0], "curves": {"train loss": [3.0, 2.0]}}}
    legend = [t.get_text() for t in curves_figure("pretrain", shared).legends[0].get_texts()]
    assert legend[0] == "folds 0, 2"


def test_single_epoch_curves_are_visible_points_on_whole_epoch_ticks() -> None:
    # a 1-epoch fine-tuning (smoke preset) gives one point per curve: drawn as markers, x axis at epoch 1
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = curves_figure("finetune", {f"arousal/fold{k:02d}": {"panel": "arousal", "folds": [k],
                                                               "curves": {"train loss": [0.7 + k / 10]}} for k in range(3)})
    FigureCanvasAgg(fig).draw()
    ax = fig.axes[0]
    assert all(line.get_marker() == "o" for line in ax.get_lines())
    assert [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]] == [1.0]


def legend_outside_axes(fig, legend, ax) -> bool:
    """True when the legend's drawn box lies entirely right of the axes' box (it hides no data)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1


def test_subject_and_confusion_plots_have_axis_labels_and_no_legend_over_bars(tmp_path, table: WindowTable) -> None:
    results = run_fake(tmp_path, table, "stimulus-kfold", labels=("four",))
    block = results["labels"]["four"]
    fig = subjects_figure("four", block, META)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("subject") and ax.get_ylabel() == "accuracy (%)"
    assert [t.get_text() for t in ax.get_xticklabels()] == META["subjects"]
    assert legend_outside_axes(fig, ax.get_legend(), ax)
    fig = curves_figure("pretrain", pretrain_history(2))
    assert legend_outside_axes(fig, fig.legends[0], fig.axes[-1])
    fig = confusion_figure("four", block["confusion"], block["class_names"])
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["HAHV", "HALV", "LAHV", "LALV"]
    assert fig.axes[1].get_ylabel() == "share of the true class"  # the colour bar says what colour means


def test_a_real_run_reports_chance_and_fold_labelled_curves(tmp_path: Path) -> None:
    """End to end on a smoke run: the pipeline's history names folds and window lengths, the report shows
    the chance it stored in results.json, and no directory hash reaches a figure."""
    from physiosync.experiments.pipeline import run_pipeline
    from physiosync.synth import write_synthetic_deap

    write_synthetic_deap(tmp_path / "data", n_subjects=3, n_trials=4, seed=0, effect=1.0)
    cfg = load_config(preset="smoke", overrides=[
        f"dataset.data_dir={tmp_path / 'data'}", f"cache_dir={tmp_path / 'cache'}", f"runs_dir={tmp_path / 'runs'}",
        "dataset.origin=synthetic", "protocol.n_folds=2",
    ])
    run_pipeline(cfg, progress=False)
    run = tmp_path / "runs" / cfg.name
    doc = json.loads((run / "results.json").read_text())
    pre = doc["history"]["pretrain"]
    assert sorted((v["panel"], tuple(v["folds"])) for v in pre.values()) == [
        ("1 s windows", (0,)), ("1 s windows", (1,)), ("5 s windows", (0,)), ("5 s windows", (1,))]
    assert all(len(v["curves"]["train loss"]) == cfg.pretrain.epochs for v in pre.values())
    assert sorted((v["panel"], tuple(v["folds"])) for v in doc["history"]["finetune"].values()) == [
        ("arousal", (0,)), ("arousal", (1,))]
    fig = curves_figure("pretrain", pre)
    assert len(fig.axes) == 2 and not [t for t in figure_texts(fig) if HASHY.search(t)]
    assert [t.get_text() for t in fig.legends[0].get_texts()][:2] == ["fold 0", "fold 1"]
    row = md_table((run / "report.md").read_text(), "label")[0]
    ch = doc["labels"]["arousal"]["chance"]
    assert ch["seed"] == cfg.seed and ch["n_permutations"] == 200
    assert row["permutation chance"] == f"{100 * ch['chance_mean']:.2f} ± {100 * ch['chance_std']:.2f}"
