"""Dataset facts files (issue 9 §1–§2): a strict typed schema, and preprocessing plans resolved from facts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from physiosync.config import PreprocessConfig, load_config
from physiosync.data import preprocess
from physiosync.data.facts import (
    QuirkName,
    dataset_facts,
    facts_names,
    load_dataset_facts,
    load_facts_file,
    parse_facts,
)
from physiosync.data.preprocess import resolve_plan
from physiosync.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2] / "src" / "physiosync" / "data" / "datasets"


def raw(name: str) -> dict:
    return yaml.safe_load((ROOT / f"{name}.yaml").read_text())


def write(tmp_path: Path, data: dict | str) -> Path:
    f = tmp_path / "mine.yaml"
    f.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return f


def test_shipped_facts_validate_and_state_how_to_preprocess() -> None:
    assert facts_names() == ["deap", "dreamer"]
    deap, dreamer = dataset_facts("deap"), dataset_facts("dreamer")
    assert (deap.baseline_layout, deap.stimulus_segment, deap.quirks) == ("prefix", "whole", ["deap_four_tie_bug"])
    assert (dreamer.baseline_layout, dreamer.stimulus_segment) == ("separate", "first_or_last")
    assert set(dreamer.quirks) == {"dreamer_ecg_from_eeg_bug", "dreamer_baseline_bug", "dreamer_window_bug"}
    assert (deap.eeg, deap.peripheral, dreamer.eeg, dreamer.peripheral) == ("eeg", "gsr", "eeg", "ecg")
    assert dreamer.trial_source_name("s03", 4, "ecg") == "DREAMER.Data{3}.ECG.stimuli{5}"
    assert deap.trial_source_name("s03", 4, "gsr") == "trial 4 signal['gsr']"
    # the plain-dict form is a copy: editing it cannot change the facts every stage reads
    d = load_dataset_facts("deap")
    d["modalities"]["eeg"]["ch_names"].clear()
    assert len(dataset_facts("deap").modalities["eeg"].ch_names) == 32


def test_every_quirk_switch_of_the_config_is_a_known_fact() -> None:
    quirks = {k for k in PreprocessConfig.model_fields if k.endswith("_bug")}
    assert quirks == set(QuirkName.__args__)


def test_a_users_file_loads_with_an_opaque_tasks_section(tmp_path: Path) -> None:
    data = {**raw("deap"), "name": "mine", "tasks": {"liking": {"kind": "threshold", "column": "liking"}}}
    data.pop("paper_results")
    facts = load_facts_file(write(tmp_path, data))
    assert facts.name == "mine" and facts.paper_results is None and facts.tasks["liking"]["column"] == "liking"


@pytest.mark.parametrize(("change", "key", "fragment"), [
    ({"baseline_layuot": "prefix"}, "baseline_layuot", "unknown key"),
    ({"n_subjects": "32"}, "n_subjects", "valid integer"),
    ({"n_trials": 2.5}, "n_trials", "valid integer"),
    ({"baseline_s": True}, "baseline_s", "not a boolean"),
    ({"stimulus_s": float("nan")}, "stimulus_s", "finite"),
    ({"baseline_layout": "suffix"}, "baseline_layout", "'prefix' or 'separate'"),
    ({"quirks": ["deap_typo_bug"]}, "quirks.0", "deap_four_tie_bug"),
    ({"quirks": ["dreamer_window_bug"]}, "<root>", "rewrite the separate-baseline path"),
    ({"thresholds": {"happiness": 5.0}}, "<root>", "not one of the ratings"),
    ({"rating_scale": [9.0, 1.0]}, "<root>", "low < high"),
    ({"trial_source": "Data{${subjekt}}"}, "<root>", "bad placeholder"),
    ({"modalities": {"eeg": {"role": "eeg", "sfreq": 128.0, "ch_names": ["Cz"]}}}, "<root>", "role 'peripheral'"),
])
def test_schema_errors_name_the_file_and_the_key(tmp_path: Path, change: dict, key: str, fragment: str) -> None:
    f = write(tmp_path, {**raw("deap"), **change})
    with pytest.raises(ConfigError) as e:
        load_facts_file(f)
    msg = str(e.value)
    assert msg.startswith(f"{f}: ") and f"'{key}'" in msg and fragment in msg, msg


def test_nested_unknown_key_and_missing_key_and_bad_yaml(tmp_path: Path) -> None:
    data = raw("dreamer")
    data["modalities"]["ecg"]["sfreqq"] = 256.0
    with pytest.raises(ConfigError, match=r"unknown key 'modalities\.ecg\.sfreqq'"):
        load_facts_file(write(tmp_path, data))
    data = raw("dreamer")
    del data["baseline_layout"]
    with pytest.raises(ConfigError, match=r"key 'baseline_layout': Field required"):
        load_facts_file(write(tmp_path, data))
    with pytest.raises(ConfigError, match="duplicate key 'name'"):
        load_facts_file(write(tmp_path, "name: a\nname: b\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_facts([1, 2], "list.yaml")
    with pytest.raises(ConfigError, match="no dataset facts for 'nope'; available: deap, dreamer"):
        dataset_facts("nope")


# ---------------------------------------------------------------------------------- plans from facts


def with_facts(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> None:
    """Make preprocessing see ``name``'s facts with ``changes`` (validated like a file)."""
    facts = parse_facts({**raw(name), **changes}, f"{name} (test)")
    monkeypatch.setattr(preprocess, "dataset_facts", lambda n: facts if n == name else dataset_facts(n))


def test_a_quirk_not_listed_in_the_facts_resolves_to_false(monkeypatch: pytest.MonkeyPatch) -> None:
    official = load_config(overrides=["preprocess.official=true"]).preprocess
    assert resolve_plan("deap", official).four_tie_bug  # listed for DEAP
    with_facts(monkeypatch, "deap", quirks=[])
    assert not resolve_plan("deap", official).four_tie_bug


def test_quirks_and_segment_follow_the_facts_not_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(overrides=["preprocess.official=true", "preprocess.dreamer_segment=last"]).preprocess
    plan = resolve_plan("dreamer", cfg)
    assert (plan.four_tie_bug, plan.ecg_from_eeg_bug, plan.baseline_bug, plan.window_bug) == (False, True, True, True)
    assert plan.segment == "last"
    with_facts(monkeypatch, "dreamer", quirks=["deap_four_tie_bug", "dreamer_window_bug"], stimulus_segment="whole")
    plan = resolve_plan("dreamer", cfg)
    assert (plan.four_tie_bug, plan.ecg_from_eeg_bug, plan.baseline_bug, plan.window_bug) == (True, False, False, True)
    assert plan.segment == "first"  # whole stimuli: the segment option does not apply
