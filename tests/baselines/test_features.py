"""Band power, differential entropy, peripheral features and chunked extraction from a cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from physiosync.baselines.features import (
    BANDS,
    ECG_FEATURES,
    GSR_FEATURES,
    band_power,
    differential_entropy,
    extract_features,
    peripheral_features,
)
from physiosync.data.contract import DataContract, ModalitySpec
from physiosync.data.table import WindowTable
from physiosync.errors import DataFormatError

SFREQ = 128.0
BAND_NAMES = list(BANDS)


def sine_windows(freq: float, n_times: int = 640, n: int = 2, n_chans: int = 3) -> np.ndarray:
    t = np.arange(n_times) / SFREQ
    return np.broadcast_to(np.sin(2 * np.pi * freq * t), (n, n_chans, n_times)).copy()


@pytest.mark.parametrize("feature", [band_power, differential_entropy])
@pytest.mark.parametrize(("freq", "band"), [(2.0, "delta"), (6.0, "theta"), (10.0, "alpha"), (20.0, "beta"),
                                            (40.0, "gamma")])
@pytest.mark.parametrize("n_times", [128, 640])
def test_sinusoid_power_lands_in_its_band(feature, freq: float, band: str, n_times: int) -> None:
    out = feature(sine_windows(freq, n_times), SFREQ)
    assert out.shape == (2, 3, len(BANDS))
    assert (out.argmax(axis=-1) == BAND_NAMES.index(band)).all()


def test_band_power_of_sinusoid_matches_its_power() -> None:
    # A unit sine has power 1/2; a Hann-windowed Welch estimate keeps it within its band.
    out = band_power(sine_windows(10.0), SFREQ)
    np.testing.assert_allclose(np.exp(out[..., BAND_NAMES.index("alpha")]), 0.5, rtol=0.02)


def test_de_of_white_noise_matches_closed_form() -> None:
    # White noise of variance s2 band-passed to [lo, hi) keeps s2 * 2 (hi - lo) / sfreq of its variance;
    # DE = 1/2 log(2 pi e var). The Butterworth skirts make the realised variance differ by a few percent.
    rng = np.random.default_rng(0)
    s2 = 4.0
    x = rng.normal(scale=np.sqrt(s2), size=(40, 8, 640))
    de = differential_entropy(x, SFREQ).mean(axis=(0, 1))
    expected = [0.5 * np.log(2 * np.pi * np.e * s2 * 2 * (hi - lo) / SFREQ) for lo, hi in BANDS.values()]
    np.testing.assert_allclose(de, expected, atol=0.08)


def test_features_are_per_window_and_per_channel() -> None:
    # Vectorised over windows: each window's features equal those computed on it alone, and channels do
    # not mix (a scaled channel shifts only its own DE by log(scale)).
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4, 256))
    x[:, 2] *= 10.0
    for fn in (band_power, differential_entropy):
        batch = fn(x, SFREQ)
        alone = np.concatenate([fn(x[i:i + 1], SFREQ) for i in range(5)])
        # float64 features of float64 windows: batching may only reorder float64 sums (~1e-16 relative,
        # log-features are well conditioned), so 1e-10 leaves 1e5 headroom and still catches any mixing.
        np.testing.assert_allclose(batch, alone, rtol=1e-10)
    de = differential_entropy(x, SFREQ)
    assert (de[:, 2] - de[:, [0, 1, 3]].mean(axis=1)).mean() == pytest.approx(np.log(10.0), abs=0.3)


def test_bad_shapes_and_bands_are_rejected() -> None:
    with pytest.raises(ValueError, match="Shape"):
        band_power(np.zeros((4, 128)), SFREQ)
    with pytest.raises(ValueError, match="Nyquist"):
        differential_entropy(np.zeros((1, 1, 128)), SFREQ, bands={"high": (50.0, 70.0)})
    with pytest.raises(ValueError, match="unknown peripheral kind"):
        peripheral_features(np.zeros((1, 1, 128)), SFREQ, kind="emg")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- ECG / GSR


def ecg_like(bpm: float, dur_s: float, rng: np.random.Generator, jitter: float = 0.0,
             first_beat_s: float = 0.1) -> np.ndarray:
    """Pulse train: narrow R wave, small S dip and broad T wave per beat, plus baseline wander and noise."""
    t = np.arange(int(dur_s * SFREQ)) / SFREQ
    x = 0.3 * np.sin(2 * np.pi * 0.3 * t) + 0.02 * rng.standard_normal(t.size)
    beat = first_beat_s
    while beat < dur_s:
        x += np.exp(-0.5 * ((t - beat) / 0.012) ** 2) - 0.25 * np.exp(-0.5 * ((t - beat - 0.03) / 0.015) ** 2)
        x += 0.2 * np.exp(-0.5 * ((t - beat - 0.25) / 0.05) ** 2)
        beat += 60.0 / bpm * (1.0 + jitter * rng.standard_normal())
    return x


def test_ecg_heart_rate_of_72_bpm_pulse_train() -> None:
    rng = np.random.default_rng(2)
    x = ecg_like(72.0, 5.0, rng)[None, None]
    hr, sdnn, rmssd = peripheral_features(x, SFREQ, kind="ecg")[0, 0]
    assert hr == pytest.approx(72.0, abs=1.5)
    assert sdnn < 15.0 and rmssd < 15.0  # regular beats: only sample quantisation (7.8 ms) remains


def test_ecg_rates_stay_with_their_windows_and_polarity_does_not_matter() -> None:
    # All rows are detected in one find_peaks call; each row must still get its own rate.
    rng = np.random.default_rng(3)
    rates = [50.0, 60.0, 72.0, 90.0, 120.0]
    x = np.stack([ecg_like(r, 5.0, rng) for r in rates])[:, None]
    x = np.concatenate([x, -x], axis=1)  # second "lead" inverted
    feats = peripheral_features(x, SFREQ, kind="ecg")
    assert feats.shape == (5, 2, len(ECG_FEATURES))
    np.testing.assert_allclose(feats[:, 0, 0], rates, atol=2.0)
    np.testing.assert_allclose(feats[:, 1, 0], rates, atol=2.0)


def test_ecg_hrv_grows_with_beat_jitter() -> None:
    rng = np.random.default_rng(4)
    x = np.stack([ecg_like(72.0, 10.0, rng), ecg_like(72.0, 10.0, rng, jitter=0.08)])[:, None]
    feats = peripheral_features(x, SFREQ, kind="ecg")[:, 0]
    assert feats[1, 1] > 3 * feats[0, 1] and feats[1, 2] > 3 * feats[0, 2]


def test_ecg_with_one_beat_is_finite() -> None:
    rng = np.random.default_rng(5)
    x = ecg_like(72.0, 1.0, rng, first_beat_s=0.5)[None, None]
    hr, sdnn, rmssd = peripheral_features(x, SFREQ, kind="ecg")[0, 0]
    assert hr == pytest.approx(60.0)  # one beat in one second
    assert sdnn == 0.0 and rmssd == 0.0


def scr(t: np.ndarray, onset: float) -> np.ndarray:
    s = np.clip(t - onset, 0.0, None)
    return (1 - np.exp(-s / 0.7)) * np.exp(-s / 4.0)


def test_gsr_level_slope_and_responses() -> None:
    rng = np.random.default_rng(6)
    t = np.arange(int(10 * SFREQ)) / SFREQ
    tonic = 2.0 + 0.05 * t + 0.002 * rng.standard_normal(t.size)
    with_scr = tonic + scr(t, 2.0) + scr(t, 6.0)
    x = np.stack([tonic, with_scr, -with_scr])[:, None]
    f = peripheral_features(x, SFREQ, kind="gsr")[:, 0]
    assert f.shape == (3, len(GSR_FEATURES))
    col = {name: i for i, name in enumerate(GSR_FEATURES)}
    assert f[0, col["level"]] == pytest.approx(tonic.mean())
    assert f[0, col["slope"]] == pytest.approx(0.05, abs=0.005)
    assert f[0, col["n_rise"]] == 0 and f[0, col["n_fall"]] == 0
    assert f[1, col["n_rise"]] == 2 and f[1, col["rise_amp"]] > 0
    # A resistance-like (inverted) signal shows the same responses as falls.
    assert f[2, col["n_fall"]] == 2 and f[2, col["fall_amp"]] == pytest.approx(f[1, col["rise_amp"]])


# ------------------------------------------------------------------------------------ extraction from cache


class ArrayCache:
    """In-memory stand-in for ``WindowCache`` (contract 2): one trial array per modality at 128 Hz."""

    def __init__(self, signals: dict[str, np.ndarray], contract: DataContract) -> None:
        self.path = Path("<memory>")
        self.signals_ = signals
        self.contract = contract
        first = next(iter(signals.values()))
        self.n_subjects, self.n_trials, _, self.n_samples = first.shape
        self.calls: list[int] = []
        rng = np.random.default_rng(0)
        self.labels = rng.integers(0, 2, size=(self.n_subjects, self.n_trials))

    def n_windows(self, window_s: float) -> int:
        return int(self.n_samples // (window_s * SFREQ))

    def windows(self, window_s: float) -> WindowTable:
        lab = self.labels
        stim = np.broadcast_to(np.arange(self.n_trials), lab.shape)
        return WindowTable.from_trials(stim, {"valence": lab * 1.0, "arousal": lab * 1.0},
                                       {"arousal": lab, "valence": lab, "four": lab}, self.n_windows(window_s),
                                       window_s)

    def get_windows(self, modality, window_s, subject, trial, window) -> np.ndarray:
        self.calls.append(len(subject))
        n = int(window_s * SFREQ)
        x = self.signals_[modality]
        starts = np.asarray(window) * n
        idx = starts[:, None] + np.arange(n)  # (B, n)
        return x[np.asarray(subject)[:, None], np.asarray(trial)[:, None], :, idx].transpose(0, 2, 1)


def make_cache(peripheral: str | None = "gsr") -> ArrayCache:
    rng = np.random.default_rng(7)
    n_sub, n_tr, n_samp = 2, 3, int(10 * SFREQ)
    mods = [ModalitySpec("eeg", "eeg", ("C3", "C4", "Pz"), SFREQ)]
    signals = {"eeg": rng.standard_normal((n_sub, n_tr, 3, n_samp)).astype(np.float32)}
    if peripheral is not None:
        mods.append(ModalitySpec(peripheral, "peripheral", ("P1",), SFREQ))
        signals[peripheral] = rng.standard_normal((n_sub, n_tr, 1, n_samp)).astype(np.float32)
    return ArrayCache(signals, DataContract(tuple(mods), window_s=(1.0, 5.0)))


@pytest.mark.parametrize("kind", ["de", "bandpower"])
def test_extract_features_reads_in_chunks_and_matches_direct(kind: str) -> None:
    cache = make_cache()
    table = cache.windows(1.0)
    rows = np.array([0, 3, 7, 12, 19, 25, 33, 41, 59])
    feats = extract_features(cache, 1.0, rows, kind=kind, peripheral=True, chunk_size=4)
    assert feats.shape == (len(rows), 3 * len(BANDS) + len(GSR_FEATURES))
    assert max(cache.calls) <= 4  # never more than one chunk in memory

    fn = differential_entropy if kind == "de" else band_power
    x = cache.get_windows("eeg", 1.0, table.subject[rows], table.trial[rows], table.window[rows])
    # Same float32 windows, same per-row arithmetic (Welch in float64; the DE filter runs row by row, so
    # chunking does not reorder it): only float64 reordering noise remains, ≪ 1e-10.
    np.testing.assert_allclose(feats[:, :15], fn(x, SFREQ).reshape(len(rows), -1), rtol=1e-10)
    # Peripheral features come from the 5 s window containing each 1 s window.
    xp = cache.get_windows("gsr", 5.0, table.subject[rows], table.trial[rows], table.window[rows] // 5)
    np.testing.assert_allclose(feats[:, 15:], peripheral_features(xp, SFREQ, "gsr").reshape(len(rows), -1))


def test_extract_features_defaults_to_all_rows() -> None:
    cache = make_cache(peripheral=None)
    feats = extract_features(cache, 5.0)
    assert feats.shape == (len(cache.windows(5.0)), 3 * len(BANDS))
    assert np.isfinite(feats).all()


def test_extract_features_without_peripheral_modality_is_an_error() -> None:
    with pytest.raises(DataFormatError, match="peripheral"):
        extract_features(make_cache(peripheral=None), 5.0, peripheral=True)
