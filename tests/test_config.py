from pathlib import Path

import pytest

from physiosync.config import load_config, load_dataset_facts, parse_override
from physiosync.errors import ConfigError


def test_defaults_validate():
    cfg = load_config()
    assert cfg.pretrain.temperature == 0.1
    assert cfg.protocol.name == "stimulus-kfold"


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("pretrain:\n  epochz: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "pretrain.epochz" in str(e.value) and str(f) in str(e.value)


def test_wrong_type_override_names_key():
    with pytest.raises(ConfigError) as e:
        load_config(overrides=["finetune.epochs=many"])
    assert "finetune.epochs" in str(e.value) and "--set" in str(e.value)


def test_override_types_and_nesting():
    cfg = load_config(overrides=["finetune.epochs=3", "dataset.subjects=[s01, s02]", "preprocess.official=true"])
    assert cfg.finetune.epochs == 3
    assert cfg.dataset.subjects == ["s01", "s02"]
    assert cfg.preprocess.quirk("deap_four_tie_bug") is True
    cfg2 = load_config(overrides=["preprocess.official=true", "preprocess.deap_four_tie_bug=false"])
    assert cfg2.preprocess.quirk("deap_four_tie_bug") is False


def test_malformed_override():
    with pytest.raises(ConfigError):
        parse_override("novalue")
    with pytest.raises(ConfigError):
        parse_override("a..b=1")


def test_dataset_facts_have_sources():
    deap = load_dataset_facts("deap")
    assert len(deap["modalities"]["eeg"]["ch_names"]) == 32
    assert deap["thresholds"]["valence"] == 5.0
    dreamer = load_dataset_facts("dreamer")
    assert dreamer["modalities"]["ecg"]["sfreq"] == 256.0


def test_preset_layers_and_command_line_preset_wins(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: paper\nfinetune:\n  epochs: 9\n")
    cfg = load_config(f)
    assert cfg.preset == "paper" and cfg.pretrain.epochs == 500 and cfg.finetune.epochs == 9
    cfg = load_config(f, preset="cpu")
    assert cfg.preset == "cpu" and cfg.pretrain.epochs == 20 and cfg.finetune.epochs == 9
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config(preset="nope")


def test_shipped_configs_validate():
    root = Path(__file__).resolve().parents[1] / "configs"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        load_config(f)
