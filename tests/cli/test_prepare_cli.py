import os
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


def _only_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cache_pointing_at_a_file_is_a_clean_error(deap_dir, tmp_path, capsys):
    target = tmp_path / "cache"
    target.write_text("not a directory")
    for cache in (target, target / "below"):
        rc = main(["prepare", "--data-dir", str(deap_dir), "--cache", str(cache), "--no-progress"])
        assert rc == 2
        line = _only_error_line(capsys.readouterr().err)
        assert f"{cache}: field 'cache_dir'" in line and "file" in line
    assert target.read_text() == "not a directory"


def test_unwritable_cache_is_a_clean_error_before_reading(deap_dir, tmp_path, capsys, monkeypatch):
    # Root may write anywhere (except read-only mounts), so the permission answer is simulated.
    import physiosync.data.cache as cache_mod

    cache = tmp_path / "ro"
    cache.mkdir()
    real_access = os.access
    monkeypatch.setattr(cache_mod.os, "access", lambda p, mode: False if Path(p) == cache else real_access(p, mode))
    monkeypatch.setattr(cache_mod, "list_inputs", lambda cfg: pytest.fail("inputs read before the cache check"))
    assert main(["prepare", "--data-dir", str(deap_dir), "--cache", str(cache), "--no-progress"]) == 2
    assert "not writable" in _only_error_line(capsys.readouterr().err)


def test_cache_write_failure_is_a_clean_error_and_leaves_nothing(deap_dir, tmp_path, capsys, monkeypatch):
    import physiosync.data.cache as cache_mod

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device", "eeg.f32")

    monkeypatch.setattr(cache_mod, "_append_subject", full_disk)
    cache = tmp_path / "c"
    assert main(["prepare", "--data-dir", str(deap_dir), "--cache", str(cache), "--no-progress"]) == 2
    line = _only_error_line(capsys.readouterr().err)
    assert "field 'cache_dir'" in line and "No space left" in line
    assert list(cache.iterdir()) == []
    monkeypatch.setattr(cache_mod.tempfile, "mkdtemp", lambda **kw: (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    assert main(["prepare", "--data-dir", str(deap_dir), "--cache", str(cache), "--no-progress"]) == 2
    assert "Permission denied" in _only_error_line(capsys.readouterr().err)


def test_output_closed_by_the_reader_is_not_a_traceback(deap_dir, tmp_path):
    # `physiosync prepare ... | head -1`: the pipe closes while we still print. Real pipe, real process.
    import subprocess
    import sys

    cmd = [sys.executable, "-c", "import sys; from physiosync.cli import main; sys.exit(main(sys.argv[1:]))",
           "prepare", "--dataset", "deap", "--data-dir", str(deap_dir), "--cache", str(tmp_path / "c")]
    subprocess.run(cmd, check=True, capture_output=True)  # build the cache first (its summary is long)
    # a large pipe write after the reader has gone: flood stdout by asking for the summary many times over
    flood = ("import sys, builtins; from physiosync.cli import main\n"
             "orig = builtins.print\n"
             "builtins.print = lambda *a, **k: [orig(*a, **k) for _ in range(2000)]\n"
             "sys.exit(main(sys.argv[1:]))")
    p = subprocess.Popen([sys.executable, "-c", flood, *cmd[3:]], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()  # the reader goes away
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
