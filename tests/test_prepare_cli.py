from pathlib import Path

import pytest

from physiosync.cli import main
from physiosync.synth.deap import write_synthetic_deap


@pytest.fixture(scope="module")
def deap_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(d, n_subjects=2, n_trials=4, seed=3)
    return d


def test_prepare_prints_summary_then_reuses(deap_dir, tmp_path, capsys):
    args = ["prepare", "--dataset", "deap", "--data-dir", str(deap_dir), "--cache", str(tmp_path / "c"),
            "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "subjects:   2 (s01..s02)" in out
    assert "trials:     8 (4 per subject)" in out
    assert "1 s: 480 (60 per trial), 5 s: 96 (12 per trial)" in out
    for label in ("arousal", "valence", "four"):
        assert f"  {label} " in out
    assert "(built)" in out and "MB on disk" in out
    [cache_dir] = list((tmp_path / "c").iterdir())
    assert cache_dir.name.split("-")[1] in out
    assert main(args) == 0
    assert "(reused)" in capsys.readouterr().out


def test_prepare_set_override_and_progress(deap_dir, tmp_path, capsys):
    args = ["prepare", "--data-dir", str(deap_dir), "--cache", str(tmp_path / "c"),
            "--set", "preprocess.official=true"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "(built)" in captured.out and "prepare deap" in captured.err  # tqdm bar on stderr


def test_prepare_bad_data_dir_is_a_clean_error(tmp_path, capsys):
    rc = main(["prepare", "--data-dir", str(tmp_path / "missing"), "--cache", str(tmp_path / "c"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "physiosync prepare: error:" in err and "missing" in err
    assert not (tmp_path / "c").exists() or list((tmp_path / "c").iterdir()) == []
