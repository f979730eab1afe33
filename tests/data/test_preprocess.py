from pathlib import Path

import numpy as np
import pytest

from physiosync.config import load_config
from physiosync.data.preprocess import (
    N_SAMPLES,
    check_prepared,
    make_baseline_template,
    make_running_templates,
    normalize_over_time,
    preprocess_recording,
    resolve_plan,
    segment_windows,
    zscore_across_channels,
)
from physiosync.data.recording import SubjectRecording, Trial
from physiosync.errors import DataFormatError

W = 128
# The pipeline computes in float64 and rounds once into float32 stores: each stored value is within
# EPS32/2 relative of its float64 value. Tolerances below are that rounding (rtol=EPS32, 2x headroom) plus,
# as atol, float64 operation-order noise (~1e-16 x |input| / std, far below 1e-12 for these O(1)-O(10)
# signals); pure-float64 formula checks use 1e-12.
EPS32 = float(np.finfo(np.float32).eps)
F32 = dict(rtol=EPS32, atol=1e-12)


def plan_for(dataset: str, *overrides: str):
    return resolve_plan(dataset, load_config(overrides=list(overrides)).preprocess)


def make_deap_recording(rng: np.random.Generator, n_trials: int = 2) -> SubjectRecording:
    trials = []
    for t in range(n_trials):
        trials.append(Trial(
            stimulus=t,
            baseline={"eeg": rng.normal(size=(32, 384)), "gsr": rng.normal(5.0, 1.0, size=(1, 384))},
            signal={"eeg": rng.normal(size=(32, 7680)), "gsr": rng.normal(5.0, 2.0, size=(1, 7680))},
        ))
    return SubjectRecording(
        subject="s01", sfreq={"eeg": 128.0, "gsr": 128.0}, ch_names={}, trials=trials,
        ratings={"valence": np.linspace(1, 9, n_trials), "arousal": np.linspace(9, 1, n_trials),
                 "dominance": np.ones(n_trials), "liking": np.ones(n_trials)},
        source=Path("s01.dat"),
    )


def make_dreamer_recording(rng: np.random.Generator, n_trials: int = 3, stim_s: float = 63.0,
                           ecg: np.ndarray | None = None) -> SubjectRecording:
    n_stim = int(stim_s * 128)
    trials = []
    for k in range(n_trials):
        # Each clip's baseline is one 1 s pattern repeated (plus noise), distinct per clip.
        pattern = rng.normal(size=(14, W)) * (k + 1)
        trials.append(Trial(
            stimulus=k,
            baseline={"eeg": np.tile(pattern, 61) + 0.01 * rng.normal(size=(14, 61 * W)),
                      "ecg": rng.normal(size=(2, 61 * 256))},
            signal={"eeg": rng.normal(size=(14, n_stim)),
                    "ecg": rng.normal(size=(2, 2 * n_stim)) if ecg is None else ecg.copy()},
        ))
    return SubjectRecording(
        subject="s01", sfreq={"eeg": 128.0, "ecg": 256.0}, ch_names={}, trials=trials,
        ratings={"valence": np.array([1.0, 3.0, 5.0])[:n_trials], "arousal": np.array([3.0, 3.0, 1.0])[:n_trials],
                 "dominance": np.ones(n_trials)},
        source=Path("DREAMER.mat"),
    )


def reference_spatial_zscore(col: np.ndarray) -> np.ndarray:
    """The spec's formula for one time point, written the obvious way."""
    out = np.zeros_like(col)
    nz = col != 0
    vals = col[nz]
    out[nz] = (vals - vals.mean()) / vals.std()
    return out


# ---------------------------------------------------------------------------------------------- blocks


def test_zscore_hand_example():
    x = np.array([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0], [0.0, 0.0, 0.0]])  # (C=3, T=3)
    z = zscore_across_channels(x)
    # t=0: non-zeros {1, 3} -> mean 2, population std 1; t=1: all equal (std 0 -> 0); t=2: all zero.
    assert np.allclose(z, [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], rtol=0, atol=1e-12)  # float64


def test_baseline_template_and_segments_hand_example():
    base = np.arange(3 * W, dtype=float)[None]  # one channel, three 1 s windows 0..127, 128.., 256..
    assert np.allclose(make_baseline_template(base), np.arange(W) + W, rtol=1e-12)  # float64 mean of 3 integers
    x = np.arange(4 * W, dtype=float)[None]
    fixed = segment_windows(x)
    assert fixed.shape == (4, 1, W) and fixed[3, 0, 0] == 3 * W
    official = segment_windows(x, official=True)  # [w0, w0, w1, w2]: strict end test drops w3
    assert official.shape == (4, 1, W)
    assert [int(s[0, 0]) // W for s in official] == [0, 0, 1, 2]
    assert len(segment_windows(np.zeros((14, 7808)), official=True)) == 61
    assert len(segment_windows(np.zeros((14, 7680)), official=True)) == 60


def test_running_templates_hand_example():
    # 3 clips x 2 one-sample segments valued 1..6: buffer = (buffer + seg[k*1-1] + seg[k*2-1]) / 2
    segs = [np.array([[[1.0]], [[2.0]]]), np.array([[[3.0]], [[4.0]]]), np.array([[[5.0]], [[6.0]]])]
    tpl = make_running_templates(segs, n_per_clip=2)
    assert np.allclose(tpl[:, 0, 0], [1.5, (1.5 + 2 + 4) / 2, (3.75 + 3 + 6) / 2], rtol=1e-12)  # float64


def test_normalize_over_time_modes():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(4, 2, 500))
    t = normalize_over_time(x.copy(), "trial")
    # float64 throughout: means of ~500-1000 z-scores are 0 to ~1e-15, stds 1 to ~1e-15; 1e-12 is safe.
    assert np.allclose(t.mean(-1), 0, atol=1e-12) and np.allclose(t.std(-1), 1, rtol=1e-12)
    s = normalize_over_time(x.copy(), "subject")
    assert np.allclose(s.mean((0, 2)), 0, atol=1e-12) and np.allclose(s.std((0, 2)), 1, rtol=1e-12)
    assert not np.allclose(s.std(-1), 1)
    assert np.array_equal(normalize_over_time(x.copy(), "none"), x)
    flat = normalize_over_time(np.full((1, 1, 10), 4.0), "trial")
    assert np.all(flat == 0)  # std 0 guarded


# ---------------------------------------------------------------------------------------------- DEAP


def test_deap_matches_spec_formula():
    rng = np.random.default_rng(0)
    rec = make_deap_recording(rng)
    # Channel 5 of trial 0 equals its own baseline template every second -> exactly zero after removal.
    tpl5 = rec.trials[0].baseline["eeg"][5].reshape(3, W).mean(0)
    rec.trials[0].signal["eeg"][5] = np.tile(tpl5, 60)
    out = preprocess_recording(rec, plan_for("deap", "preprocess.peripheral_norm=none"))
    eeg = out.signals["eeg"]
    assert eeg.dtype == np.float32 and eeg.shape == (2, 32, N_SAMPLES)
    for t in range(2):
        x = rec.trials[t].signal["eeg"]
        b = rec.trials[t].baseline["eeg"]
        for n in (0, 127, 128, 4000, 7679):
            tau = n % W
            base = (b[:, tau] + b[:, W + tau] + b[:, 2 * W + tau]) / 3
            expected = reference_spatial_zscore(x[:, n] - base)
            assert np.allclose(eeg[t, :, n], expected, **F32)  # float32 store of a float64 z-score
    assert np.all(eeg[0, 5] == 0)
    # GSR: baseline removal only.
    g, gb = rec.trials[1].signal["gsr"][0], rec.trials[1].baseline["gsr"][0]
    expected = g - np.tile(gb.reshape(3, W).mean(0), 60)
    assert np.allclose(out.signals["gsr"][1, 0], expected, **F32)
    # ratings (v, a) = (1, 9) -> HALV, (9, 1) -> LAHV
    assert out.ratings["valence"].tolist() == [1.0, 9.0]
    assert out.labels["label_four"].tolist() == [1, 2]


def test_deap_peripheral_norm_default_and_official():
    assert plan_for("deap").peripheral_norm == "subject"  # dataset facts
    assert plan_for("deap", "preprocess.official=true").peripheral_norm == "none"
    assert plan_for("deap", "preprocess.official=true", "preprocess.peripheral_norm=trial").peripheral_norm == "trial"
    rec = make_deap_recording(np.random.default_rng(2))
    gsr = preprocess_recording(rec, plan_for("deap")).signals["gsr"]
    # Statistics of the stored float32 values, taken in float64 (a float32 accumulator would add its own
    # error): the float32 rounding moves each z-score (|z| < 6) by ≤ 6·EPS32/2, so mean and std by < 4e-7.
    assert np.allclose(gsr.mean(dtype=np.float64), 0, atol=1e-6)
    assert np.isclose(gsr.std(dtype=np.float64), 1, atol=1e-6)


def test_deap_bad_shape_is_data_format_error():
    rec = make_deap_recording(np.random.default_rng(0))
    rec.trials[1].signal["eeg"] = rec.trials[1].signal["eeg"][:, :7000]
    with pytest.raises(DataFormatError) as e:
        preprocess_recording(rec, plan_for("deap"))
    assert "s01.dat" in str(e.value) and "7680" in str(e.value)


# ---------------------------------------------------------------------------------------------- DREAMER


def test_official_switch_resolves_every_quirk_for_its_dataset_only():
    deap, dreamer = plan_for("deap", "preprocess.official=true"), plan_for("dreamer", "preprocess.official=true")
    assert deap.four_tie_bug and not (deap.ecg_from_eeg_bug or deap.baseline_bug or deap.window_bug)
    assert dreamer.ecg_from_eeg_bug and dreamer.baseline_bug and dreamer.window_bug and not dreamer.four_tie_bug
    fixed = plan_for("dreamer")
    assert not (fixed.ecg_from_eeg_bug or fixed.baseline_bug or fixed.window_bug)
    assert fixed.peripheral_norm == "trial" and {k: fixed.thresholds[k] for k in ("valence", "arousal")} == {
        "valence": 3.0, "arousal": 3.0}
    assert fixed.thresholds["dominance"] == 3.0  # every DREAMER rating has its facts threshold


def _corrected(rec: SubjectRecording, k: int, start: int = 0) -> np.ndarray:
    """EEG of clip k minus its own template, seconds start..start+59 (the fixed default)."""
    tpl = rec.trials[k].baseline["eeg"].reshape(14, 61, W).mean(1)
    x = rec.trials[k].signal["eeg"][:, start : start + N_SAMPLES]
    return (x.reshape(14, 60, W) - tpl[:, None]).reshape(14, N_SAMPLES)


def test_dreamer_defaults_own_baseline_sixty_windows():
    rng = np.random.default_rng(3)
    rec = make_dreamer_recording(rng)
    out = preprocess_recording(rec, plan_for("dreamer"))
    eeg = out.signals["eeg"]
    assert eeg.shape == (3, 14, N_SAMPLES) and out.signals["ecg"].shape == (3, 2, N_SAMPLES)
    for k in range(3):
        assert np.allclose(eeg[k], zscore_across_channels(_corrected(rec, k)), **F32)
    # 60 distinct windows: no duplicated first second.
    w = eeg[0].reshape(14, 60, W)
    assert not np.allclose(w[:, 0], w[:, 1])
    # segment=last takes the last 60 s of the 63 s clip.
    last = preprocess_recording(rec, plan_for("dreamer", "preprocess.dreamer_segment=last")).signals["eeg"]
    assert np.allclose(last[1], zscore_across_channels(_corrected(rec, 1, start=3 * 128)), **F32)
    ecg = out.signals["ecg"]
    # per trial; float64 statistics of float32 z-scores (|z| < 6): off by < 6·EPS32/2 ≈ 4e-7, as for GSR
    assert np.allclose(ecg.mean(-1, dtype=np.float64), 0, atol=1e-6)
    assert np.allclose(ecg.std(-1, dtype=np.float64), 1, atol=1e-6)
    assert out.labels["label_four"].tolist() == [1, 0, 2]  # (v, a) = (1, 3) HALV, (3, 3) HAHV, (5, 1) LAHV


def test_dreamer_ecg_resampled_onto_eeg_seconds():
    # A 0.5 Hz sine sampled at 256 Hz must come out as the same sine sampled at 128 Hz: second w of the
    # ECG then covers second w of the EEG (cutting 256 Hz data as if it were 128 Hz would double its speed).
    n = 63 * 256
    sine = np.sin(2 * np.pi * 0.5 * np.arange(n) / 256.0)
    rec = make_dreamer_recording(np.random.default_rng(4), n_trials=1, ecg=np.stack([sine, -sine]))
    rec.trials[0].baseline["ecg"][:] = 0.0  # zero template: the output is the resampled signal itself
    ecg = preprocess_recording(rec, plan_for("dreamer", "preprocess.peripheral_norm=none")).signals["ecg"][0]
    expected = np.sin(2 * np.pi * 0.5 * np.arange(N_SAMPLES) / 128.0)
    inner = slice(64, N_SAMPLES)  # the polyphase filter's start-up transient lies in the first samples
    # atol is the anti-aliasing filter's passband error at 0.5 Hz, a property of the method, not rounding.
    assert np.allclose(ecg[0, inner], expected[inner], atol=1e-3)
    assert np.allclose(ecg[1, inner], -expected[inner], atol=1e-3)


def test_dreamer_window_bug_duplicates_first_window():
    rng = np.random.default_rng(5)
    rec = make_dreamer_recording(rng, n_trials=2)
    eeg = preprocess_recording(rec, plan_for("dreamer", "preprocess.dreamer_window_bug=true")).signals["eeg"]
    k = 1
    b = rec.trials[k].baseline["eeg"].reshape(14, 61, W)
    tpl = (b[:, 0] + b[:, :60].sum(1)) / 61  # mean of the 61 segments [b0, b0, b1, ..., b59]
    x = rec.trials[k].signal["eeg"][:, :N_SAMPLES].reshape(14, 60, W)
    segs = x[:, [0] + list(range(59))] - tpl[:, None]  # [w0, w0, w1, ..., w58]
    expected = zscore_across_channels(segs.reshape(14, N_SAMPLES))
    assert np.allclose(eeg[k], expected, **F32)
    w = eeg[k].reshape(14, 60, W)
    assert np.array_equal(w[:, 0], w[:, 1])  # stored segments stay 1 s views: the duplicate is visible


def test_dreamer_baseline_bug_running_accumulator():
    rng = np.random.default_rng(6)
    rec = make_dreamer_recording(rng, n_trials=3)
    eeg = preprocess_recording(rec, plan_for("dreamer", "preprocess.dreamer_baseline_bug=true")).signals["eeg"]
    segs = [t.baseline["eeg"].reshape(14, 61, W).transpose(1, 0, 2) for t in rec.trials]
    flat = np.concatenate(segs)  # (3 * 61, 14, W) in clip order
    buffer = np.zeros((14, W))
    for k in (1, 2, 3):
        buffer = (buffer + sum(flat[k * i - 1] for i in range(1, 62))) / 61
        x = rec.trials[k - 1].signal["eeg"][:, :N_SAMPLES].reshape(14, 60, W) - buffer[:, None]
        assert np.allclose(eeg[k - 1], zscore_across_channels(x.reshape(14, N_SAMPLES)), **F32)
    # Clip 1 averages its own baseline, so only clips 2.. differ from the fixed default. The two float64
    # paths sum in different orders, so their float32 stores may differ by one rounding (rtol=EPS32).
    fixed = preprocess_recording(rec, plan_for("dreamer")).signals["eeg"]
    assert np.allclose(fixed[0], eeg[0], **F32) and not np.allclose(fixed[1], eeg[1], atol=1e-3)


def test_dreamer_ecg_from_eeg_bug_discards_real_ecg():
    rng = np.random.default_rng(7)
    rec = make_dreamer_recording(rng, n_trials=2)
    for t in rec.trials:
        t.baseline["ecg"][:] = 0.0  # zero ECG template: "ECG" = corrected AF3/F7 themselves
    plan = plan_for("dreamer", "preprocess.dreamer_ecg_from_eeg_bug=true")
    ecg = preprocess_recording(rec, plan).signals["ecg"]
    c = _corrected(rec, 1)
    # A 2-value spatial z-score is the sign of the difference: (+1, -1) or (-1, +1).
    assert np.array_equal(ecg[1, 0], np.sign(c[0] - c[1]).astype(np.float32))
    assert np.array_equal(ecg[1, 1], -ecg[1, 0])
    for t in rec.trials:
        t.signal["ecg"] = rng.normal(size=t.signal["ecg"].shape)  # the real ECG never reaches the output
    assert np.array_equal(preprocess_recording(rec, plan).signals["ecg"], ecg)


def test_dreamer_ecg_from_eeg_bug_uses_unresampled_ecg_template():
    rng = np.random.default_rng(8)
    rec = make_dreamer_recording(rng, n_trials=1)
    b = rec.trials[0].baseline["ecg"]  # (2, 61 * 256) at 256 Hz, cut by the authors as 122 x 128 samples
    tpl = b.reshape(2, 122, W).mean(1)
    eeg = preprocess_recording(rec, plan_for("dreamer")).signals["eeg"]  # EEG is unaffected by D1
    ecg = preprocess_recording(rec, plan_for("dreamer", "preprocess.dreamer_ecg_from_eeg_bug=true")).signals["ecg"]
    d = (_corrected(rec, 0)[:2].reshape(2, 60, W) - tpl[:, None]).reshape(2, N_SAMPLES)
    assert np.array_equal(ecg[0], np.stack([np.sign(d[0] - d[1]), np.sign(d[1] - d[0])]).astype(np.float32))
    assert np.allclose(preprocess_recording(rec, plan_for("dreamer", "preprocess.dreamer_ecg_from_eeg_bug=true"))
                       .signals["eeg"], eeg)


def test_dreamer_short_clip_is_data_format_error():
    rec = make_dreamer_recording(np.random.default_rng(9), n_trials=1, stim_s=50.0)
    with pytest.raises(DataFormatError) as e:
        preprocess_recording(rec, plan_for("dreamer"))
    assert "DREAMER.mat" in str(e.value) and "7680" in str(e.value)
    assert e.value.field == "DREAMER.Data{1}.EEG.stimuli{1}" and "subject s01 clip 1" in str(e.value)


def test_gsr_beyond_float32_with_no_normalisation_is_an_error():
    # 1e39 is a finite float64 but Inf once stored as float32; peripheral_norm=none keeps the raw units
    rec = make_deap_recording(np.random.default_rng(3))
    for trial in rec.trials:
        for part in (trial.baseline, trial.signal):
            part["gsr"] = part["gsr"] * 1e39
    with pytest.raises(DataFormatError) as e:
        preprocess_recording(rec, plan_for("deap", "preprocess.peripheral_norm=none"))
    assert e.value.field == "trial 0 signal['gsr']"
    assert "Inf" in str(e.value) and "subject s01 trial 0 (gsr)" in str(e.value)
    out = preprocess_recording(rec, plan_for("deap"))  # z-scored per subject, the same input is fine
    assert np.isfinite(out.signals["gsr"]).all()


@pytest.mark.parametrize(("mod", "trial"), [("eeg", 0), ("gsr", 1)])
def test_a_trial_without_signal_is_an_error(mod: str, trial: int):
    rec = make_deap_recording(np.random.default_rng(4))
    for part in (rec.trials[trial].baseline, rec.trials[trial].signal):
        part[mod] = np.full_like(part[mod], 7.0)  # flat: nothing left after baseline removal
    with pytest.raises(DataFormatError) as e:
        preprocess_recording(rec, plan_for("deap", "preprocess.peripheral_norm=none"))
    assert e.value.field == f"trial {trial} signal[{mod!r}]" and "constant 0" in str(e.value)
    assert f"subject s01 trial {trial} ({mod})" in str(e.value)


def test_check_prepared_changes_nothing_on_valid_data():
    rec = make_deap_recording(np.random.default_rng(5))
    out = preprocess_recording(rec, plan_for("deap"))
    before = {k: v.copy() for k, v in out.signals.items()}
    check_prepared(rec, out.signals)
    for k, v in before.items():
        assert np.array_equal(out.signals[k], v)
