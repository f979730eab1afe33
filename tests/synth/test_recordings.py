"""Synthetic own recordings: every format read back through ``mne.io.read_raw``, table and dataset file
consistent with the files, label structure present, determinism, atomic writes, clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import mne
import numpy as np
import pytest
import yaml

import physiosync.synth.recordings as rec
from physiosync.atomic import is_temp_name
from physiosync.cli import main
from physiosync.errors import ConfigError

FORMATS = tuple(rec.FORMATS)
SMALL = {"n_subjects": 2, "n_trials": 3, "trial_seconds": 4.0, "montage": "epoc14", "files_per_subject": 2,
         "sfreq": (256.0, 512.0), "vary_trial_length": True}

# Channel types each format carries back (module docstring of synth/recordings.py): FIF and EEGLAB keep
# them; EDF/BDF through the EDF+ label prefix ("ECG ECG", "MISC GSR") read with infer_types=True;
# BrainVision has no types (µV channels -> eeg, others -> misc).
PERIPHERAL_TYPE = {
    ("fif", "gsr"): "gsr", ("eeglab", "gsr"): "gsr", ("edf", "gsr"): "misc", ("bdf", "gsr"): "misc",
    ("brainvision", "gsr"): "misc",
    ("fif", "ecg"): "ecg", ("eeglab", "ecg"): "ecg", ("edf", "ecg"): "ecg", ("bdf", "ecg"): "ecg",
    ("brainvision", "ecg"): "eeg",
}
F32_RTOL = 2.0**-23  # float32 storage rounds to nearest (relative 2^-24); ×2 for the float64 unit scalings


def read(path: Path, fmt: str) -> mne.io.BaseRaw:
    kw = {"infer_types": True} if fmt in ("edf", "bdf") else {}
    return mne.io.read_raw(path, preload=True, verbose="error", **kw)


def read_table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def edf_tolerance(path: Path, fmt: str) -> np.ndarray:
    """Per-channel read-back tolerance of an EDF/BDF file from its own header: half a quantisation step.

    step = (physical max - min) / (digital max - min) in the header's physical unit (µV for voltages, as
    MNE's export writes them; the GSR misc channel unscaled in µS). The affine digital<->physical maps are
    float64 on values below 2^24 counts (relative error ~1e-16 x 2^24 ~ 2e-9), covered by the 1e-6 margin.
    """
    import edfio

    file = edfio.read_edf(path) if fmt == "edf" else edfio.read_bdf(path)
    tol = []
    for s in file.signals:
        p, d = s.physical_range, s.digital_range
        scale = 1e-6 if s.physical_dimension in ("uV", "µV") else 1.0
        tol.append(0.5 * (p.max - p.min) / (d.max - d.min) * scale * (1 + 1e-6))
    return np.array(tol)


@pytest.fixture(scope="module", params=FORMATS)
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, rec.WrittenRecordings]:
    fmt = request.param
    return fmt, rec.write_synthetic_recordings(tmp_path_factory.mktemp(fmt), format=fmt, seed=3, **SMALL)


def test_round_trip_names_types_rates_data(written: tuple[str, rec.WrittenRecordings]) -> None:
    fmt, w = written
    spec = rec.RecordingsSpec(format=fmt, seed=3, **SMALL)
    rates = set()
    for (layout, ref, _), path in zip(rec.iter_recordings(spec), w.files, strict=True):
        raw = read(path, fmt)
        assert path.name == layout.name
        assert raw.ch_names == [*rec.MONTAGES["epoc14"], "GSR"]
        assert raw.get_channel_types() == ["eeg"] * 14 + [PERIPHERAL_TYPE[fmt, "gsr"]]
        assert raw.info["sfreq"] == layout.sfreq
        rates.add(raw.info["sfreq"])
        assert raw.n_times == ref.n_times  # whole seconds: no EDF padding record
        got, want = raw.get_data(), ref.get_data()
        if fmt in ("edf", "bdf"):
            tol = edf_tolerance(path, fmt)
            assert np.all(np.abs(got - want) <= tol[:, None])
            assert tol[:14].max() < (1e-8 if fmt == "edf" else 1e-10)  # 16 bit: < 0.01 µV; 24 bit: < 1e-4 µV
        else:
            np.testing.assert_allclose(got, want, rtol=F32_RTOL, atol=0)
    assert rates == {256.0, 512.0}  # rates cycle over the files


def test_annotations_match_table_and_lie_inside_recordings(written: tuple[str, rec.WrittenRecordings]) -> None:
    fmt, w = written
    rows = read_table(w.table)
    assert tuple(rows[0]) == rec.TABLE_COLUMNS
    assert {r["file"] for r in rows} == {p.name for p in w.files}
    for path in w.files:
        raw = read(path, fmt)
        mine = [r for r in rows if r["file"] == path.name]
        desc = [d.removeprefix("Comment/") if fmt == "brainvision" else d for d in raw.annotations.description]
        assert desc == [r["stimulus"] for r in mine]
        # table times are multiples of 0.5 s (exact in every format's representation); 1e-6 s covers
        # float64 rounding of EEGLAB's latency = onset * sfreq + 1, far below one sample (1/512 s)
        np.testing.assert_allclose(raw.annotations.onset, [float(r["onset"]) for r in mine], rtol=0, atol=1e-6)
        np.testing.assert_allclose(raw.annotations.duration, [float(r["duration"]) for r in mine], rtol=0, atol=1e-6)
        end = raw.n_times / raw.info["sfreq"]
        for r in mine:
            onset, dur, b_on, b_dur = (float(r[k]) for k in ("onset", "duration", "baseline_onset",
                                                              "baseline_duration"))
            assert 0 <= b_on and b_on + b_dur <= onset and onset + dur <= end
            assert (onset * raw.info["sfreq"]).is_integer() and (dur * raw.info["sfreq"]).is_integer()
    # every subject saw every stimulus exactly once, in its own order; ratings on the 1..9 scale
    for s in ("sub-01", "sub-02"):
        assert sorted(r["stimulus"] for r in rows if r["subject"] == s) == ["stim01", "stim02", "stim03"]
    assert [r["stimulus"] for r in rows if r["subject"] == "sub-01"] != [
        r["stimulus"] for r in rows if r["subject"] == "sub-02"]
    ratings = np.array([[float(r[k]) for k in rec.RATINGS] for r in rows])
    assert ratings.min() >= 1.0 and ratings.max() <= 9.0
    # the same stimulus has the same duration for everyone, and durations vary (vary_trial_length)
    dur = {(r["stimulus"], r["duration"]) for r in rows}
    assert len(dur) == 3 and len({d for _, d in dur}) > 1


def test_dataset_file_describes_the_files(written: tuple[str, rec.WrittenRecordings]) -> None:
    fmt, w = written
    doc = yaml.safe_load(w.dataset_file.read_text())
    raw = read(w.files[0], fmt)
    eeg = doc["modalities"]["eeg"]["ch_names"]
    assert eeg == raw.ch_names[:14] and doc["modalities"]["gsr"]["ch_names"] == ["GSR"]
    assert doc["modalities"]["gsr"]["kind"] == "gsr" and doc["target_sfreq"] == 128.0
    assert doc["recordings"]["trials_table"] == "trials.tsv"
    assert doc["recordings"]["read_raw"]["infer_types"] == (fmt in ("edf", "bdf"))
    assert doc["stimulus_s"] == 4.0 and doc["default_resolutions"] == [1.0]  # shortest trial 4 s: no 5 s window
    assert set(doc["tasks"]) >= {"arousal", "valence", "four"}
    # the stated unit is the unit of what mne.io.read_raw returns: tonic skin conductance 2-8 µS
    gsr = raw.get_data(picks=["GSR"]).mean()
    scale = {"S": 1e-6, "uS": 1.0}[doc["modalities"]["gsr"]["unit"]]
    assert 1.0 * scale < gsr < 12.0 * scale
    assert 5e-6 < raw.get_data(picks="eeg").std() < 100e-6  # EEG tens of µV, in volts


@pytest.mark.parametrize("fmt", ["edf", "fif", "brainvision", "eeglab"])
def test_ecg_and_eeg_only(tmp_path: Path, fmt: str) -> None:
    kw = {"n_subjects": 1, "n_trials": 2, "trial_seconds": 3.0, "montage": "epoc14"}
    w = rec.write_synthetic_recordings(tmp_path / "ecg", format=fmt, peripheral="ecg", **kw)
    raw = read(w.files[0], fmt)
    assert raw.ch_names[-1] == "ECG" and raw.get_channel_types()[-1] == PERIPHERAL_TYPE[fmt, "ecg"]
    ecg = raw.get_data(picks=["ECG"])[0]
    assert 0.5e-3 < np.ptp(ecg) < 5e-3  # QRS of about 1 mV, in volts
    doc = yaml.safe_load(w.dataset_file.read_text())
    assert doc["modalities"]["ecg"] == {"role": "peripheral", "kind": "ecg", "ch_names": ["ECG"], "unit": "V"}
    w = rec.write_synthetic_recordings(tmp_path / "none", format=fmt, peripheral="none", **kw)
    raw = read(w.files[0], fmt)
    assert raw.ch_names == list(rec.MONTAGES["epoc14"]) and set(raw.get_channel_types()) == {"eeg"}
    doc = yaml.safe_load(w.dataset_file.read_text())
    assert list(doc["modalities"]) == ["eeg"] and "peripheral_norm" not in doc


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    pos, neg = score[positive], score[~positive]
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum())
                 / (pos.size * neg.size))


def _fast_power_change(w: rec.WrittenRecordings) -> tuple[np.ndarray, np.ndarray]:
    """Per trial, read through MNE with the table: log 14-45 Hz EEG power, stimulus minus baseline."""
    rows, score, high = read_table(w.table), [], []
    raws = {p.name: read(p, "edf") for p in w.files}
    for r in rows:
        raw = raws[r["file"]]
        fs = raw.info["sfreq"]

        def band_power(onset: float, dur: float, raw: mne.io.BaseRaw = raw, fs: float = fs) -> float:
            x = raw.get_data(picks="eeg", start=int(round(onset * fs)), stop=int(round((onset + dur) * fs)))
            spec = np.abs(np.fft.rfft(x - x.mean(-1, keepdims=True), axis=-1)) ** 2
            f = np.fft.rfftfreq(x.shape[-1], 1 / fs)
            return float(np.log(spec[:, (f >= 14) & (f <= 45)].mean()))

        onset, dur = float(r["onset"]), float(r["duration"])
        score.append(band_power(onset + 1.0, dur - 1.0) - band_power(float(r["baseline_onset"]),
                                                                     float(r["baseline_duration"])))
        high.append(float(r["arousal"]) >= 5.0)
    return np.array(score), np.array(high)


def test_label_structure_present_with_effect_and_absent_without(tmp_path: Path) -> None:
    """A trivial feature (fast EEG power, stimulus vs baseline) separates high/low arousal trials."""
    kw = {"format": "edf", "n_subjects": 4, "n_trials": 8, "trial_seconds": 6.0, "montage": "epoc14", "seed": 1}
    score, high = _fast_power_change(rec.write_synthetic_recordings(tmp_path / "on", effect=1.0, **kw))
    assert 8 <= high.sum() <= 24  # both classes well represented among the 32 trials
    assert _auc(score, high) > 0.9  # amplitude x e^(±0.35): the classes' power differs by e^1.4
    score0, high0 = _fast_power_change(rec.write_synthetic_recordings(tmp_path / "off", effect=0.0, **kw))
    np.testing.assert_array_equal(high0, high)  # same ratings: only the effect differs
    assert 0.2 < _auc(score0, high0) < 0.8  # no label information (32 trials: chance sd of the AUC ~0.1)


def _folder_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


@pytest.mark.parametrize("fmt", FORMATS)
def test_deterministic_by_seed(tmp_path: Path, fmt: str) -> None:
    kw = {"format": fmt, "n_subjects": 1, "n_trials": 2, "trial_seconds": 2.0, "montage": "epoc14"}
    rec.write_synthetic_recordings(tmp_path / "a", seed=5, **kw)
    rec.write_synthetic_recordings(tmp_path / "b", seed=5, **kw)
    rec.write_synthetic_recordings(tmp_path / "c", seed=6, **kw)
    a, b, c = (_folder_bytes(tmp_path / x) for x in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_layout_does_not_depend_on_rates(tmp_path: Path) -> None:
    kw = {"n_subjects": 2, "n_trials": 3, "trial_seconds": 2.0, "montage": "epoc14", "files_per_subject": 2}
    a = rec.write_synthetic_recordings(tmp_path / "a", sfreq=256.0, **kw)
    b = rec.write_synthetic_recordings(tmp_path / "b", sfreq=(512.0, 1024.0), **kw)
    assert a.table.read_bytes() == b.table.read_bytes()


def test_interrupted_write_leaves_no_table_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real, calls = rec._export, []

    def crash_second(raw: mne.io.BaseRaw, fmt: str, path: Path) -> None:
        calls.append(path.name)
        real(raw, fmt, path)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(rec, "_export", crash_second)
    with pytest.raises(KeyboardInterrupt):
        rec.write_synthetic_recordings(tmp_path, format="brainvision", n_subjects=2, n_trials=1,
                                       trial_seconds=2.0, montage="epoc14")
    names = sorted(p.name for p in tmp_path.iterdir())
    # the first recording is complete; the second never appeared; no table, so the folder is not a dataset
    assert names == ["sub-01_run-01_eeg.eeg", "sub-01_run-01_eeg.vhdr", "sub-01_run-01_eeg.vmrk"]
    assert not any(is_temp_name(n) for n in names)


def test_bad_settings_and_foreign_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad, field in (({"format": "gdf"}, "format 'gdf'"), ({"sfreq": 250.5}, "250.5 Hz"),
                       ({"trial_seconds": 2.2}, "trial seconds 2.2"), ({"files_per_subject": 9}, "files per subject"),
                       ({"peripheral": "ppg"}, "peripheral 'ppg'")):
        with pytest.raises(ConfigError, match=field):
            rec.write_synthetic_recordings(tmp_path / "x", **bad)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "notes.txt").write_text("mine")
    assert main(["synth", "recordings", "--out", str(tmp_path / "y"), "--subjects", "1", "--trials", "1",
                 "--trial-seconds", "2"]) == 2
    err = capsys.readouterr().err
    assert "found 1 other entries (notes.txt)" in err and len(err.strip().splitlines()) == 1


def test_cli_writes_recordings(tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    assert main(["synth", "recordings", "--format", "bdf", "--out", str(out), "--subjects", "1", "--trials", "2",
                 "--trial-seconds", "2", "--peripheral", "ecg", "--montage", "epoc14", "--sfreq", "512",
                 "--files-per-subject", "2", "--seed", "4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["dataset.yaml", "sub-01_run-01_eeg.bdf",
                                                     "sub-01_run-02_eeg.bdf", "trials.tsv"]
    raw = read(out / "sub-01_run-02_eeg.bdf", "bdf")
    assert raw.info["sfreq"] == 512.0 and raw.ch_names[-1] == "ECG" and len(raw.annotations) == 1
    # a format given to the wrong dataset is a usage error, as argparse reports one: message, exit status 2
    for argv, says in ((["recordings", "--format", "matlab"], "is for 'deap'"),
                       (["deap", "--format", "edf"], "is for 'recordings'"),
                       (["deap", "--effect", "-1"], "--effect must be >= 0")):
        with pytest.raises(SystemExit) as exit_info:
            main(["synth", *argv, "--out", str(tmp_path / "x")])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("physiosync synth: error: ") and says in err, err
    assert not (tmp_path / "x").exists()  # nothing written
