from pathlib import Path

import pytest

from physiosync.config import dump_config, list_presets, load_config, load_dataset_facts, parse_override
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
    "preset", "n_threads", "pretrain_store", "dataset.data_dir", "dataset.subjects", "dataset.file",
    "preprocess.deap_four_tie_bug", "preprocess.dreamer_ecg_from_eeg_bug", "preprocess.dreamer_baseline_bug",
    "preprocess.dreamer_window_bug", "pretrain.steps_per_epoch", "finetune.t0", "finetune.steps_per_epoch",
    "protocol.n_folds", "protocol.folds", "seeds", "executor.address",
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
    assert {k: cfg.preprocess.thresholds[k] for k in ("valence", "arousal")} == {
        "valence": facts["thresholds"]["valence"], "arousal": facts["thresholds"]["arousal"]}
    assert cfg.preprocess.thresholds == {r: float(facts["thresholds"][r]) for r in facts["ratings"]}  # every rating
    assert list(cfg.tasks) == list(facts["tasks"])  # the facts' label tasks, resolved into the saved config
    assert raw.model.resolutions is None  # the input is not modified
    # idempotent, and a saved (dumped) resolved config reloads to itself: what resume compares
    assert resolve_config(cfg) == cfg
    assert resolve_config(load_config_text(dump_config(cfg))) == cfg


# ----------------------------------------------------------------------------------------------------
# hardening (issue 8 §4, configuration); the CLI-level corpus is tests/test_corpus_config.py


def test_error_messages_are_bounded():
    from physiosync.errors import MAX_ECHO, MAX_MESSAGE, DataFormatError

    e = DataFormatError("f.dat", "data", "x" * 10**6, "y" * 10**6)
    assert len(str(e)) < 2 * MAX_ECHO + 200 and "more characters" in str(e)
    assert len(str(ConfigError("z" * 10**7))) < MAX_MESSAGE + 50
    assert str(DataFormatError("f.dat", "data", (3, 4), "(32, 8064)")) == \
        "f.dat: field 'data': found (3, 4); expected (32, 8064)"  # short messages are unchanged


def test_strict_types_refuse_coercions():
    for item in ("seed=true", "seed=2.5", "finetune.epochs='3'", "preprocess.official=1", "finetune.lr=true"):
        with pytest.raises(ConfigError, match=item.split("=")[0]):
            load_config(overrides=[item])
    # floats keep accepting what YAML hands over for `1e-3` (a string) and integers
    cfg = load_config(overrides=["finetune.lr=1e-3", "pretrain.temperature=1"])
    assert cfg.finetune.lr == 1e-3 and cfg.pretrain.temperature == 1.0


def test_duplicate_keys_and_aliases_are_refused(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("seed: 1\nfinetune:\n  epochs: 2\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"line 4, column 3: duplicate key 'epochs' \(first at line 3\)"):
        load_config(f)
    f.write_text("finetune: {lr: &x 0.001}\npretrain: {lr: *x}\n")
    with pytest.raises(ConfigError, match="anchor 'x'"):
        load_config(f)


def test_error_names_the_layer_that_set_the_key(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: smoke\nfinetune: {lr: -1}\n")
    with pytest.raises(ConfigError) as e:
        load_config(f, overrides=["seed=1", "pretrain.lr=0"])
    msg = str(e.value)
    assert f"{f}: key 'finetune.lr'" in msg and "--set pretrain.lr=0: key 'pretrain.lr'" in msg
    assert "seed" not in msg and "\n" not in msg


def test_keys_that_constrain_each_other_can_be_set_separately():
    cfg = load_config(preset="smoke", overrides=["model.resolutions=[2.5]", "model.embed_dim={2.5: 8}",
                                                  "model.n_heads=4"])
    assert cfg.model.resolutions == [2.5] and cfg.model.embed_dim["2.5"] == 8
    with pytest.raises(ConfigError, match="model.n_heads.*must divide every embed_dim"):
        load_config(preset="smoke", overrides=["model.n_heads=3"])


def test_embed_dim_keys_are_canonical_and_later_spellings_win(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: smoke\nmodel: {embed_dim: {1: 8, '5': 12}}\n")
    assert load_config(f).model.embed_dim == {"1.0": 8, "5.0": 12}  # replaces the preset's 16s in place


def test_subject_ids_are_canonical():
    assert load_config(overrides=["dataset.subjects=[1, s2, S03]"]).dataset.subjects == ["s01", "s02", "s03"]
    with pytest.raises(ConfigError, match="duplicate entries 's01'"):
        load_config(overrides=["dataset.subjects=[s1, s01]"])


def test_window_problem_is_exact():
    from physiosync.config import window_problem

    assert window_problem([1.0, 5.0], 7680, 128.0) is None
    assert window_problem([2.5], 7680, 128.0) is None  # 320 samples, 24 per trial
    assert "not a whole number of samples" in window_problem([0.3], 7680, 128.0)
    assert "does not tile a 60 s trial" in window_problem([7.0], 7680, 128.0)
    assert "does not tile a 60 s trial" in window_problem([120.0], 7680, 128.0)
    assert "does not tile the longest" in window_problem([2.0, 3.0], 7680, 128.0)
    assert "does not tile a 50 s trial" in window_problem([1.0, 30.0], 6400, 128.0)


def test_resolutions_are_checked_against_the_prepared_cache(monkeypatch, tmp_path: Path):
    """Where the prepared trials differ from the dataset facts, the pipeline refuses with a ConfigError."""
    import physiosync.data.cache
    from physiosync.data.facts import prepared_contract
    from physiosync.experiments.pipeline import RunContext, stage_prepare

    class FakeCache:  # a prepared dataset whose trials are 50 s long (6400 samples)
        contract, n_samples, sfreq, path = prepared_contract("deap"), 6400, 128.0, tmp_path / "cache"

    monkeypatch.setattr(physiosync.data.cache, "build_cache", lambda cfg, progress=True: FakeCache())
    cfg = load_config(preset="smoke", overrides=[f"dataset.data_dir={tmp_path}", "model.embed_dim={30: 8, 1: 8}",
                                                  "model.resolutions=[1, 30]"])
    with pytest.raises(ConfigError, match=r"model.resolutions \[1.0, 30.0\]: a 30 s window does not tile a 50 s"):
        stage_prepare(RunContext(cfg=cfg, run_dir=tmp_path / "run"))


def test_dump_config_round_trips_without_aliases():
    from physiosync.config import dump_config

    for preset in list_presets():
        cfg = load_config(preset=preset, overrides=["dataset.subjects=[1]"])
        text = dump_config(cfg)
        assert "&" not in text and "*" not in text
        assert load_config_text(text) == cfg


def load_config_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "config.yaml"
        f.write_text(text)
        return load_config(f)


def test_resolve_config_keeps_given_values_and_merges_partial_thresholds():
    from physiosync.config import resolve_config

    cfg = resolve_config(load_config(overrides=[
        "dataset.name=dreamer", "model.resolutions=[5, 1.0]", "preprocess.peripheral_norm=none",
        "preprocess.thresholds={arousal: 3.5}"]))
    assert cfg.model.resolutions == [1.0, 5.0]  # sorted floats: [5, 1] and [1, 5] are one config (repeats are refused)
    assert cfg.preprocess.peripheral_norm == "none"
    assert cfg.preprocess.thresholds == {"valence": 3.0, "arousal": 3.5, "dominance": 3.0}
    # official: the authors never normalise the peripheral signal (D23), whatever the dataset's default
    off = resolve_config(load_config(overrides=["preprocess.official=true"]))
    assert off.preprocess.peripheral_norm == "none"
    with pytest.raises(ConfigError, match=r"model\.resolutions"):
        resolve_config(load_config(overrides=["model.resolutions=[]"]))


def test_resolved_preprocessing_gives_the_plan_of_the_dataset_defaults():
    """The cache hash covers the resolved plan: resolving the config first must give the plan the unresolved
    config always gave (the values below), so existing caches and the demo's numbers stay valid."""
    from physiosync.config import resolve_config
    from physiosync.data.preprocess import resolve_plan

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
            va = {k: plan.thresholds[k] for k in ("valence", "arousal")}  # the other ratings: test_tasks.py
            assert (plan.peripheral_norm, va) == (norm, thr), (dataset, over)


def test_unusable_device_is_a_config_error(monkeypatch):
    import torch

    from physiosync.training.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device is available on this machine; use --device cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu0")
    assert resolve_device("cpu").type == "cpu" and resolve_device("auto").type in ("cpu", "mps")
