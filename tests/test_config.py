from pathlib import Path

import pytest

from physiosync.config import dump_config, load_config, load_dataset_facts, parse_override
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


# ------------------------------------------------------------------------------ dataset defaults (issue 8 §2)


def _none_fields(model: object, prefix: str = "") -> set[str]:
    """Dotted names of every field that is None, recursively through the config sections."""
    from pydantic import BaseModel

    out: set[str] = set()
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            out |= _none_fields(value, f"{prefix}{name}.")
        elif value is None:
            out.add(f"{prefix}{name}")
    return out


# Fields whose None is *not* a dataset default: unset paths and caps, "all" selections, data-dependent
# counts (known only once the data are read), and quirk flags (None = follow preprocess.official). A new
# None-able field must be added here or filled by resolve_config: this list is what makes the test fail
# when someone adds a "None = dataset default" field and forgets to resolve it.
NOT_DATASET_DEFAULTS = {
    "preset", "n_threads", "pretrain_store", "dataset.data_dir", "dataset.subjects",
    "preprocess.deap_four_tie_bug", "preprocess.dreamer_ecg_from_eeg_bug", "preprocess.dreamer_baseline_bug",
    "preprocess.dreamer_window_bug", "pretrain.steps_per_epoch", "finetune.t0", "finetune.steps_per_epoch",
    "protocol.n_folds", "protocol.folds",
}


@pytest.mark.parametrize("dataset", ["deap", "dreamer"])
def test_resolve_config_fills_every_dataset_default_from_the_facts(dataset: str):
    from physiosync.config import resolve_config

    raw = load_config(overrides=[f"dataset.name={dataset}"])
    assert raw.model.resolutions is None and raw.preprocess.peripheral_norm is None  # loading does not resolve
    cfg = resolve_config(raw)
    assert _none_fields(cfg) <= NOT_DATASET_DEFAULTS, _none_fields(cfg) - NOT_DATASET_DEFAULTS
    facts = load_dataset_facts(dataset)
    assert cfg.model.resolutions == [float(w) for w in facts["default_resolutions"]]
    assert cfg.model.resolutions == ([1.0, 5.0] if dataset == "deap" else [1.0])  # method-spec §3.6 / §3.7
    assert cfg.preprocess.peripheral_norm == facts["peripheral_norm"] == ("subject" if dataset == "deap" else "trial")
    assert cfg.preprocess.thresholds == {"valence": facts["thresholds"]["valence"],
                                         "arousal": facts["thresholds"]["arousal"]}
    assert raw.model.resolutions is None  # the input is not modified
    # idempotent, and a saved (dumped) resolved config reloads to itself: what resume compares
    assert resolve_config(cfg) == cfg
    assert resolve_config(load_config_text(dump_config(cfg))) == cfg


def load_config_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "config.yaml"
        f.write_text(text)
        return load_config(f)


def test_resolve_config_keeps_given_values_and_merges_partial_thresholds():
    from physiosync.config import resolve_config

    cfg = resolve_config(load_config(overrides=[
        "dataset.name=dreamer", "model.resolutions=[5, 1.0, 5.0]", "preprocess.peripheral_norm=none",
        "preprocess.thresholds={arousal: 3.5}"]))
    assert cfg.model.resolutions == [1.0, 5.0]  # sorted, distinct floats: [5, 1] and [1, 5] are one config
    assert cfg.preprocess.peripheral_norm == "none"
    assert cfg.preprocess.thresholds == {"valence": 3.0, "arousal": 3.5}
    # official: the authors never normalise the peripheral signal (D23), whatever the dataset's default
    off = resolve_config(load_config(overrides=["preprocess.official=true"]))
    assert off.preprocess.peripheral_norm == "none"
    with pytest.raises(ConfigError, match=r"model\.resolutions"):
        resolve_config(load_config(overrides=["model.resolutions=[]"]))


def test_resolved_preprocessing_gives_the_plan_of_the_dataset_defaults():
    """The cache hash covers the resolved plan: resolving the config first must give the plan the unresolved
    config always gave (the values below), so existing caches and the demo's numbers stay valid."""
    from physiosync.config import resolve_config
    from physiosync.preprocess import resolve_plan

    cases = {  # (dataset, overrides) -> (peripheral_norm, thresholds)
        ("deap", ()): ("subject", {"valence": 5.0, "arousal": 5.0}),
        ("dreamer", ()): ("trial", {"valence": 3.0, "arousal": 3.0}),
        ("deap", ("preprocess.official=true",)): ("none", {"valence": 5.0, "arousal": 5.0}),
        ("dreamer", ("preprocess.official=true",)): ("none", {"valence": 3.0, "arousal": 3.0}),
        ("deap", ("preprocess.thresholds={valence: 6}",)): ("subject", {"valence": 6.0, "arousal": 5.0}),
        ("dreamer", ("preprocess.peripheral_norm=subject",)): ("subject", {"valence": 3.0, "arousal": 3.0}),
    }
    for (dataset, over), (norm, thr) in cases.items():
        raw = load_config(overrides=[f"dataset.name={dataset}", *over])
        for pc in (raw.preprocess, resolve_config(raw).preprocess):
            plan = resolve_plan(dataset, pc)
            assert (plan.peripheral_norm, plan.thresholds) == (norm, thr), (dataset, over)
