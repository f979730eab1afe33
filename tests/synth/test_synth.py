"""Synthetic datasets: determinism, atomic writes, planted structure present with effect>0 and absent at 0."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

import physiosync.synth.deap as synth_deap
from physiosync.cli import main
from physiosync.data.readers import read_deap, read_dreamer
from physiosync.synth import signals as sig
from physiosync.synth import write_synthetic_deap, write_synthetic_dreamer
from physiosync.synth.dreamer import make_dreamer_scores

RIGHT, LEFT = [16, 17, 19, 20], [0, 1, 2, 3]  # Fp2 AF4 F4 F8 / Fp1 AF3 F3 F7 in DEAP's channel order


def _bytes(paths: list[Path]) -> list[bytes]:
    return [p.read_bytes() for p in paths]


@pytest.mark.parametrize("fmt", ["python", "matlab"])
def test_deap_deterministic_and_subset_consistent(tmp_path: Path, fmt: str) -> None:
    a = write_synthetic_deap(tmp_path / "a", n_subjects=2, n_trials=2, seed=7, format=fmt)
    b = write_synthetic_deap(tmp_path / "b", n_subjects=2, n_trials=2, seed=7, format=fmt)
    c = write_synthetic_deap(tmp_path / "c", n_subjects=1, n_trials=2, seed=7, format=fmt)
    d = write_synthetic_deap(tmp_path / "d", n_subjects=1, n_trials=2, seed=8, format=fmt)
    assert _bytes(a) == _bytes(b)
    assert _bytes(c) == _bytes(a)[:1]  # s01 does not depend on how many subjects are written
    assert _bytes(d) != _bytes(c)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"s01.{'dat' if fmt == 'python' else 'mat'}",
                                                                   f"s02.{'dat' if fmt == 'python' else 'mat'}"]


def test_dreamer_deterministic(tmp_path: Path) -> None:
    kw = {"n_subjects": 1, "n_trials": 2, "clip_seconds": (60.0, 61.0)}
    a = write_synthetic_dreamer(tmp_path / "a", seed=1, **kw)
    b = write_synthetic_dreamer(tmp_path / "b" / "D.mat", seed=1, **kw)
    c = write_synthetic_dreamer(tmp_path / "c", seed=2, **kw)
    assert a.name == "DREAMER.mat" and b.name == "D.mat"
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_interrupted_write_leaves_no_valid_looking_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synth_deap.write_mat_deterministic

    def crash_midway(path: Path, variables: dict) -> None:
        path.write_bytes(b"MATLAB 5.0 MAT-file half written")
        if "data" in variables and variables["data"].shape[0] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(synth_deap, "write_mat_deterministic", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic_deap(tmp_path, n_subjects=1, n_trials=2, format="matlab")
    assert list(tmp_path.iterdir()) == []  # no s01.mat and no temp file
    monkeypatch.setattr(synth_deap, "write_mat_deterministic", real)


def test_cli_writes_readable_datasets(tmp_path: Path) -> None:
    assert main(["synth", "deap", "--out", str(tmp_path / "deap"), "--subjects", "1", "--trials", "1",
                 "--format", "matlab", "--effect", "0"]) == 0
    rec = next(read_deap(tmp_path / "deap"))
    assert rec.source.name == "s01.mat" and rec.n_trials == 1
    assert main(["synth", "dreamer", "--out", str(tmp_path / "dr"), "--subjects", "1", "--trials", "1",
                 "--clip-seconds", "60", "60.5"]) == 0
    rec = next(read_dreamer(tmp_path / "dr" / "DREAMER.mat"))
    assert rec.n_trials == 1 and 7680 <= rec.trials[0].signal["eeg"].shape[1] <= 7744


def test_dreamer_file_has_the_spec_nesting(tmp_path: Path) -> None:
    path = write_synthetic_dreamer(tmp_path, n_subjects=1, n_trials=2, clip_seconds=(60.0, 61.0))
    d = scipy.io.loadmat(path)["DREAMER"][0, 0]
    assert d.dtype.names == ("Data", "EEG_SamplingRate", "ECG_SamplingRate", "EEG_Electrodes", "noOfSubjects",
                             "noOfVideoSequences", "Disclaimer", "Provider", "Version", "Acknowledgement")
    s = d["Data"][0, 0]
    assert s.dtype.names == ("Age", "Gender", "EEG", "ECG", "ScoreValence", "ScoreArousal", "ScoreDominance")
    assert s["EEG"][0, 0]["stimuli"][0, 0][1, 0].shape[1] == 14
    assert s["EEG"][0, 0]["baseline"][0, 0][1, 0].shape == (7808, 14)
    assert s["ECG"][0, 0]["baseline"][0, 0][0, 0].shape == (15616, 2)
    assert s["ScoreValence"][0, 0].shape == (2, 1)
    assert d["EEG_SamplingRate"][0, 0] == 128 and d["ECG_SamplingRate"][0, 0] == 256
    assert [str(e[0]) for e in d["EEG_Electrodes"][0]][:3] == ["AF3", "F7", "F3"]


def test_ratings_distributions() -> None:
    deap = np.concatenate([synth_deap.make_deap_ratings(0, s, 40) for s in range(1, 33)])
    assert deap.min() >= 1.0 and deap.max() <= 9.0
    assert 0.5 < (deap[:, 0] >= 5).mean() < 0.65 and 0.5 < (deap[:, 1] >= 5).mean() < 0.67
    assert 0.01 < (deap[:, :2] == 5.0).mean() < 0.1  # exact ties at the threshold exist
    dreamer = np.concatenate([make_dreamer_scores(0, s, 18) for s in range(1, 24)])
    assert set(np.unique(dreamer)) <= {1, 2, 3, 4, 5} and len(np.unique(dreamer[:, 0])) >= 4


def _deap_features(effect: float, n_subjects: int = 5, n_trials: int = 8) -> dict[str, np.ndarray]:
    """Per (subject, trial): frontal alpha asymmetry, valence class, GSR stimulus/baseline ratio, arousal."""
    out: dict[str, list] = {"faa": [], "val": [], "gsr": [], "aro": [], "eeg_sd": [], "gsr_level": []}
    for s in range(1, n_subjects + 1):
        data, labels = synth_deap.make_deap_subject(3, s, n_trials, effect)
        stim = data[:, :32, 384:]
        spec = np.abs(np.fft.rfft(stim, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(stim.shape[-1], 1 / 128)
        alpha = np.log(spec[..., (freqs >= 8) & (freqs <= 13)].mean(-1))
        out["faa"] += list(alpha[:, RIGHT].mean(1) - alpha[:, LEFT].mean(1))
        out["val"] += list(labels[:, 0] >= 5)
        out["gsr"] += list(data[:, 36, 384 + 128 * 10:].mean(-1) / data[:, 36, :384].mean(-1))
        out["aro"] += list(labels[:, 1] >= 5)
        out["eeg_sd"] += list(stim.std(-1).mean(-1))
        out["gsr_level"] += list(data[:, 36].mean(-1))
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_label_structure_present_with_effect_and_absent_without() -> None:
    on, off = _deap_features(1.0), _deap_features(0.0)
    assert on["val"].std() > 0 and on["aro"].std() > 0
    assert _corr(on["faa"], on["val"]) > 0.5  # frontal alpha asymmetry follows valence
    assert _corr(on["gsr"], on["aro"]) > 0.5  # GSR level rises with arousal
    assert abs(_corr(off["faa"], off["val"])) < 0.35
    assert abs(_corr(off["gsr"], off["aro"])) < 0.35
    # realistic units: EEG tens of µV, DEAP GSR raw values of order 1e3–1e4
    assert 5 < on["eeg_sd"].mean() < 60 and 1e3 < on["gsr_level"].min() and on["gsr_level"].max() < 2e4


def test_effect_zero_signals_do_not_depend_on_ratings() -> None:
    """The exact no-leak property: with effect 0, any ratings give bit-identical signals."""
    n_base, n_stim, fs = 384, 1280, 128.0
    latent = np.stack([sig.make_stimulus_latent(0, k, n_stim, fs) for k in range(3)])
    names = np.arange(32)
    asym, slow = np.where(names < 4, -1.0, np.where(names > 27, 1.0, 0.0)), names % 2 == 0
    pos, neg = np.ones(3), -np.ones(3)

    def signals(effect: float, v: np.ndarray, a: np.ndarray) -> list[np.ndarray]:
        rng = np.random.default_rng(11)
        p_eeg, p_gsr, p_ecg = sig.draw_eeg_params(rng, 32, names > 20), sig.draw_gsr_params(rng), sig.draw_ecg_params(rng)
        return [sig.make_eeg(rng, p_eeg, latent, n_base, v, a, effect, asym, slow, fs),
                sig.make_gsr(rng, p_gsr, latent, n_base, a, effect, fs),
                sig.make_ecg(rng, p_ecg, latent, n_base, a, effect, fs)]

    for x, y in zip(signals(0.0, pos, pos), signals(0.0, neg, neg), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(signals(1.0, pos, pos), signals(1.0, neg, neg), strict=True):
        assert not np.array_equal(x[..., n_base + 64:], y[..., n_base + 64:])  # labels act on the stimulus
        np.testing.assert_allclose(x[..., : n_base // 2], y[..., : n_base // 2])  # never on the baseline


def test_heart_rate_follows_arousal() -> None:
    fs, n_stim = 256.0, 256 * 60
    latent = sig.make_stimulus_latent(0, 0, n_stim, fs)[None, :]
    params = sig.draw_ecg_params(np.random.default_rng(0))

    def bpm(sign: float) -> float:
        ecg = sig.make_ecg(np.random.default_rng(1), params, latent, 0, np.array([sign]), 1.0, fs)[0, 0]
        beat = ecg - np.median(ecg)
        peaks = np.flatnonzero((beat[1:-1] > beat[:-2]) & (beat[1:-1] >= beat[2:]) & (beat[1:-1] > 0.5 * beat.max()))
        return len(peaks) * 60.0 / (n_stim / fs)

    high, low = bpm(1.0), bpm(-1.0)
    assert 50 < low < 100 and 6.0 < high - low < 18.0  # 2 x 6 bpm at effect 1


def test_stimulus_latent_synchronises_subjects_and_modalities() -> None:
    """Same video, different subjects: GSR time courses correlate; different videos: they do not."""
    n_trials = 4
    gsr = {}
    for s in (1, 2):
        data, _ = synth_deap.make_deap_subject(9, s, n_trials, 0.0)
        x = data[:, 36, 384 + 128 * 10:]  # skip the onset ramp
        x = x - np.linspace(x[:, :1], x[:, -1:], x.shape[1], axis=1)[..., 0]  # remove the trend
        gsr[s] = x
    same = np.mean([_corr(gsr[1][k], gsr[2][k]) for k in range(n_trials)])
    other = np.mean([_corr(gsr[1][k], gsr[2][(k + 1) % n_trials]) for k in range(n_trials)])
    assert same > 0.4 and same - other > 0.3
