import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import physiosync.data.cache as cache_mod
from physiosync.config import load_config
from physiosync.data.cache import build_cache, open_cache
from physiosync.data.preprocess import preprocess_recording, resolve_plan
from physiosync.data.readers.deap import read_deap
from physiosync.errors import DataFormatError
from physiosync.synth.deap import write_synthetic_deap

N_SUB, N_TRIALS = 3, 3


@pytest.fixture(scope="module")
def deap_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("deap")
    write_synthetic_deap(d, n_subjects=N_SUB, n_trials=N_TRIALS, seed=1)
    return d


def make_cfg(data_dir: Path, cache_dir: Path, *overrides: str):
    cfg = load_config(overrides=list(overrides))
    cfg.dataset.data_dir = data_dir
    cfg.cache_dir = cache_dir
    return cfg


def cache_entries(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in cache_dir.iterdir()) if cache_dir.exists() else []


@pytest.fixture(scope="module")
def built(deap_dir, tmp_path_factory):
    cfg = make_cfg(deap_dir, tmp_path_factory.mktemp("cache"))
    return cfg, build_cache(cfg, progress=False)


def test_layout_and_contents_match_preprocessing(built, deap_dir):
    cfg, cache = built
    assert cache.path.name == f"deap-{cache.hash[:12]}" and not cache.reused
    assert cache.subjects == ["s01", "s02", "s03"] and cache.n_trials == N_TRIALS and cache.n_samples == 7680
    assert {m.name for m in cache.contract.modalities} == {"eeg", "gsr"}
    eeg = cache.signals("eeg")
    assert eeg.shape == (N_SUB, N_TRIALS, 32, 7680) and eeg.dtype == np.float32 and not eeg.flags.writeable
    assert (cache.path / "eeg.f32").stat().st_size == eeg.size * 4
    plan = resolve_plan("deap", cfg.preprocess)
    for s, rec in enumerate(read_deap(deap_dir)):
        ref = preprocess_recording(rec, plan)
        for mod in ("eeg", "gsr"):
            assert np.array_equal(cache.signals(mod)[s], ref.signals[mod])
        assert np.array_equal(cache.trials["label_four"][s], ref.labels["label_four"])
        assert np.array_equal(cache.trials["valence"][s], rec.ratings["valence"])
    m = json.loads((cache.path / "manifest.json").read_text())
    assert m["hash"] == cache.hash and m["format_version"] == cache_mod.FORMAT_VERSION
    assert [Path(e["file"]).name for e in m["inputs"]] == ["s01.dat", "s02.dat", "s03.dat"]
    assert all(len(e["sha256"]) == 64 for e in m["inputs"])


def test_five_second_slices_equal_one_second_windows(built):
    _, cache = built
    assert cache.n_windows(1.0) == 60 and cache.n_windows(5.0) == 12
    t5 = cache.windows(5.0)
    assert len(t5) == N_SUB * N_TRIALS * 12 and len(cache.windows(1.0)) == N_SUB * N_TRIALS * 60
    rows = np.arange(len(t5))
    for mod in ("eeg", "gsr"):
        x5 = cache.get_windows(mod, 5.0, t5.subject[rows], t5.trial[rows], t5.window[rows])
        assert x5.shape == (len(t5), cache.contract.modality(mod).n_chans, 640)
        for k in range(5):
            x1 = cache.get_windows(mod, 1.0, t5.subject, t5.trial, 5 * t5.window + k)
            assert np.array_equal(x5[:, :, k * 128 : (k + 1) * 128], x1)
    # A window is exactly the stored samples it names.
    x = cache.get_windows("eeg", 1.0, np.array([2]), np.array([1]), np.array([7]))
    assert np.array_equal(x[0], cache.signals("eeg")[2, 1, :, 7 * 128 : 8 * 128])


def test_window_table_rows_follow_trials(built):
    _, cache = built
    t = cache.windows(1.0)
    row = (2 * N_TRIALS + 1) * 60 + 7  # subject 2, trial 1, window 7
    assert (t.subject[row], t.trial[row], t.window[row]) == (2, 1, 7)
    assert t.label("four")[row] == cache.trials["label_four"][2, 1]
    assert t.ratings["arousal"][row] == cache.trials["arousal"][2, 1]


def test_reused_when_nothing_changed_without_rehashing(built, monkeypatch):
    cfg, cache = built
    manifest_mtime = (cache.path / "manifest.json").stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(cache_mod, "hash_file", lambda p: calls.append(p) or "x")
    again = build_cache(cfg, progress=False)
    assert again.reused and again.path == cache.path and again.hash == cache.hash
    assert calls == []  # size and mtime unchanged: the recorded sha256 was trusted
    assert (cache.path / "manifest.json").stat().st_mtime_ns == manifest_mtime


def test_rebuilt_when_config_changes(built):
    cfg, cache = built
    cfg2 = make_cfg(cfg.dataset.data_dir, cfg.cache_dir, "preprocess.peripheral_norm=none")
    other = build_cache(cfg2, progress=False)
    assert not other.reused and other.hash != cache.hash
    assert not np.array_equal(np.asarray(other.signals("gsr")), np.asarray(cache.signals("gsr")))
    assert np.array_equal(np.asarray(other.signals("eeg")), np.asarray(cache.signals("eeg")))
    # Equivalent spellings of the same preprocessing share one cache (the hash covers the resolved plan).
    cfg3 = make_cfg(cfg.dataset.data_dir, cfg.cache_dir, "preprocess.official=true")
    cfg4 = make_cfg(cfg.dataset.data_dir, cfg.cache_dir, "preprocess.deap_four_tie_bug=true",
                    "preprocess.peripheral_norm=none", "preprocess.dreamer_window_bug=true")
    assert build_cache(cfg3, progress=False).path == build_cache(cfg4, progress=False).path


def test_rebuilt_when_an_input_file_changes(deap_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(deap_dir, data)
    cfg = make_cfg(data, tmp_path / "cache")
    first = build_cache(cfg, progress=False)
    f = data / "s02.dat"
    st = f.stat()
    other = tmp_path / "other"
    write_synthetic_deap(other, n_subjects=N_SUB, n_trials=N_TRIALS, seed=2)
    raw = (other / "s02.dat").read_bytes()  # same size, different content
    assert len(raw) == st.st_size
    f.write_bytes(raw)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = build_cache(cfg, progress=False)
    assert not second.reused and second.hash != first.hash
    assert not np.array_equal(np.asarray(second.signals("eeg")[1]), np.asarray(first.signals("eeg")[1]))
    assert np.array_equal(np.asarray(second.signals("eeg")[0]), np.asarray(first.signals("eeg")[0]))


def test_corrupt_subject_in_the_middle_leaves_no_cache(deap_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(deap_dir, data)
    f = data / "s02.dat"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # truncated pickle
    cache_dir = tmp_path / "cache"
    with pytest.raises(DataFormatError) as e:
        build_cache(make_cfg(data, cache_dir), progress=False)
    assert "s02.dat" in str(e.value)
    assert cache_entries(cache_dir) == []


def test_interrupted_build_leaves_no_cache(deap_dir, tmp_path, monkeypatch):
    real = cache_mod.preprocess_recording
    seen = []

    def interrupt_on_second(rec, plan, out=None):
        seen.append(rec.subject)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(rec, plan, out)

    monkeypatch.setattr(cache_mod, "preprocess_recording", interrupt_on_second)
    cache_dir = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        build_cache(make_cfg(deap_dir, cache_dir), progress=False)
    assert cache_entries(cache_dir) == []


def test_open_cache_rejects_truncated_or_foreign_directories(built, tmp_path):
    _, cache = built
    copy = tmp_path / "copy"
    shutil.copytree(cache.path, copy)
    assert open_cache(copy).hash == cache.hash
    with open(copy / "gsr.f32", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(DataFormatError, match="gsr.f32"):
        open_cache(copy)
    with pytest.raises(DataFormatError, match="manifest.json"):
        open_cache(tmp_path)


def test_dreamer_cache_from_synthetic_file(tmp_path):
    synth = pytest.importorskip("physiosync.synth.dreamer")
    path = tmp_path / "DREAMER.mat"
    synth.write_synthetic_dreamer(path, n_subjects=2, n_trials=3, seed=0)
    cfg = make_cfg(tmp_path, tmp_path / "cache")  # a directory containing DREAMER.mat is accepted
    cfg.dataset.name = "dreamer"
    cache = build_cache(cfg, progress=False)
    assert cache.signals("eeg").shape == (2, 3, 14, 7680) and cache.signals("ecg").shape == (2, 3, 2, 7680)
    assert cache.n_windows(1.0) == 60 and np.isfinite(np.asarray(cache.signals("ecg"))).all()
    # Official switches on the real reader's output: duplicated first window and a ±1 "ECG" (D1, D13).
    cfg.preprocess.official = True
    official = build_cache(cfg, progress=False)
    assert official.path != cache.path
    ecg = np.asarray(official.signals("ecg"))
    assert set(np.unique(ecg)) <= {-1.0, 0.0, 1.0}
    eeg = np.asarray(official.signals("eeg")).reshape(2, 3, 14, 60, 128)
    assert np.array_equal(eeg[:, :, :, 0], eeg[:, :, :, 1])


def test_cache_stores_every_rating_and_one_label_column_per_task(built, tmp_path):
    _, cache = built
    assert cache.ratings == ["valence", "arousal", "dominance", "liking"]
    assert list(cache.tasks) == ["arousal", "valence", "four", "dominance", "liking"]
    m = json.loads((cache.path / "manifest.json").read_text())
    assert m["tasks"]["four"] == {"kind": "quadrants", "columns": ["arousal", "valence"],
                                  "class_names": ["HAHV", "HALV", "LAHV", "LALV"]}
    for r in cache.ratings:  # liking and dominance are stored too, as the reader gave them
        assert np.isfinite(cache.trials[r]).all()
    assert np.array_equal(cache.trials["label_liking"], (cache.trials["liking"] >= 5.0).astype(np.int64))
    t = cache.windows(5.0)
    assert sorted(t.labels) == sorted(cache.tasks) and list(t.ratings) == cache.ratings
    sub = t.select(np.arange(3, 9))
    assert np.array_equal(sub.label("dominance"), t.label("dominance")[3:9])
    t.to_csv(tmp_path / "t.csv")
    header = (tmp_path / "t.csv").read_text().splitlines()[0].split(",")
    assert header == ["subject", "trial", "stimulus", "window", *cache.ratings, *(f"label_{n}" for n in cache.tasks)]
    with pytest.raises(KeyError, match="unknown label 'happiness'"):
        t.label("happiness")


def test_a_config_task_changes_the_cache_hash_and_a_manifest_without_tasks_is_refused(built, deap_dir, tmp_path):
    cfg, cache = built
    other = build_cache(make_cfg(deap_dir, cfg.cache_dir, "tasks={dv: {kind: quadrants, columns: [dominance, valence]}}"),
                        progress=False)
    assert other.hash != cache.hash and other.task("dv").class_names == ("HH", "HL", "LH", "LL")
    assert "label_dv" in other.trials and "label_dv" not in cache.trials
    copy = tmp_path / "old"
    shutil.copytree(cache.path, copy)
    m = json.loads((copy / "manifest.json").read_text())
    del m["tasks"]
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DataFormatError, match="tasks"):
        open_cache(copy)
