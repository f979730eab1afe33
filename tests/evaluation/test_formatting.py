"""One percentage form everywhere: report.md, the printed results of `run`, the comparison."""

from __future__ import annotations

from physiosync.evaluation.formatting import format_pct, format_stat


def test_format_pct_forms() -> None:
    assert format_pct(0.625, 0.03125) == "62.5 ± 3.1"
    assert format_pct(0.625, 0.03125, digits=2) == "62.50 ± 3.12"
    assert format_pct(0.625) == "62.5"  # no spread: the mean alone
    assert format_pct(None, 0.1) == "—" and format_pct(None) == "—"
    assert format_pct(0.0, 0.0) == "0.0 ± 0.0"  # a zero is a number, not a missing one
    assert format_pct(62.345, 1.5, digits=2, scale=1.0) == "62.34 ± 1.50"  # already in percent (paper tables)


def test_format_stat_reads_a_summary_entry() -> None:
    assert format_stat({"mean": 0.5, "std": 0.25, "n": 3, "ddof": 0}) == "50.0 ± 25.0"
    assert format_stat({"mean": 0.5, "std": None}, digits=2) == "50.00"
    assert format_stat(None) == "—" and format_stat({}) == "—" and format_stat({"mean": None, "std": 0.1}) == "—"


def test_run_report_and_console_show_the_same_form() -> None:
    from physiosync.cli.run import format_results
    from physiosync.evaluation.report import render_markdown

    stat = {"mean": 0.71875, "std": 0.046875, "n": 2, "ddof": 0}
    summary = {m: stat for m in ("accuracy", "balanced_accuracy", "f1", "trial_vote_accuracy", "majority_accuracy")}
    block = {"n_classes": 2, "f1_kind": "binary", "summary": {**summary, "n_folds": 2},
             "subjects": {"per_subject": [], "summary": {"accuracy": stat, "n_subjects": 2}},
             "chance": {"chance_mean": 0.5, "chance_std": 0.0625, "p_value": 0.01, "n_permutations": 200}}
    results = {"protocol": {"name": "loso", "leaky": False, "official": False, "description": "", "n_folds": 2},
               "ddof": 0, "labels": {"valence": block}}
    console = format_results(results).splitlines()[-1]
    assert console.split()[:4] == ["valence", "71.9", "±", "4.7"] and console.endswith(" 50.0")
    md = render_markdown(results, {"run_name": "x"}, [])
    row = next(line for line in md.splitlines() if line.startswith("| valence |"))
    assert row.startswith("| valence | 71.88 ± 4.69 | 71.88 ± 4.69 | 71.88 ± 4.69 (binary) | — | 71.88 ± 4.69 |")
    assert "| 50.00 ± 6.25 | 0.01 |" in row


def test_dataset_label_names_own_recordings_by_their_dataset_file():
    from physiosync.evaluation.formatting import dataset_label

    assert dataset_label({"dataset": "recordings", "dataset_name": "my-study"}) == "my-study (recordings)"
    assert dataset_label({"dataset": "deap", "dataset_name": "deap"}) == "deap"
    assert dataset_label({"dataset": "dreamer"}) == "dreamer"  # results.json written before the key existed
    assert dataset_label({}) == "—"
