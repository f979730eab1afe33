"""Hand-crafted features for the cheap baselines (evaluation-protocols.md §4.2).

A deep model is only "better" if it clears a differential-entropy (DE) / band-power + linear model row on
the same folds, so these features must be the standard ones and must be computed on exactly the windows the
deep models see. Everything here is vectorised over windows: filters and Welch run on the last axis of a
``(n, C, T)`` block, and peak detection runs once over all windows laid end to end (see
:func:`_find_peaks_rows`), so the cost does not come from Python loops.

Peripheral features (GSR level/slope/phasic peaks, ECG heart rate and HRV) need more than one second of
signal: a 1 s window holds about one heart beat and no complete skin-conductance response. When they are
read from the cache (:func:`extract_features`) they are therefore computed on the *longest* window of the
contract that contains the requested window (the 5 s window ``w // 5`` for a 1 s window ``w``), which is
always inside the same trial, so no protocol that holds out whole trials or subjects can leak through it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import numpy as np
from scipy.signal import butter, find_peaks, sosfiltfilt, welch

from physiosync.data.contract import DataContract
from physiosync.data.table import WindowTable
from physiosync.errors import DataFormatError

#: Frequency bands in Hz, ``[low, high)``; the 13–14 Hz gap between alpha and beta is the usual DEAP choice.
BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (14.0, 30.0),
    "gamma": (30.0, 45.0),
}

#: Names of the per-channel peripheral features, in output order.
GSR_FEATURES = ("level", "slope", "n_rise", "rise_amp", "n_fall", "fall_amp")
ECG_FEATURES = ("hr", "sdnn", "rmssd")

BandSpec = Mapping[str, tuple[float, float]] | Sequence[tuple[float, float]]


class WindowSource(Protocol):
    """The part of ``physiosync.data.cache.WindowCache`` (contract 2) that feature extraction reads."""

    path: object
    contract: DataContract

    def windows(self, window_s: float) -> WindowTable: ...

    def get_windows(
        self, modality: str, window_s: float, subject: np.ndarray, trial: np.ndarray, window: np.ndarray
    ) -> np.ndarray: ...


def _band_edges(bands: BandSpec) -> list[tuple[float, float]]:
    edges = list(bands.values()) if isinstance(bands, Mapping) else list(bands)
    for lo, hi in edges:
        if not 0 <= lo < hi:
            raise ValueError(f"band ({lo}, {hi}) must satisfy 0 <= low < high")
    return [(float(lo), float(hi)) for lo, hi in edges]


def _check_windows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"expected windows of Shape (n, C, T), got an array of shape {x.shape}")
    return x


def band_power(x: np.ndarray, sfreq: float, bands: BandSpec = BANDS) -> np.ndarray:
    """Log band power per channel and band from a Welch periodogram.

    Welch segments are 2 s long (or the whole window if shorter), so a 1 s window at 128 Hz has 1 Hz bins
    and a 5 s window 0.5 Hz bins averaged over 4 half-overlapping segments; power is the PSD summed over
    the bins in ``[low, high)`` times the bin width.

    Args:
        x: EEG windows. Shape: (n, C, T).
        sfreq: Sampling rate in Hz.
        bands: Band edges in Hz, ``name -> (low, high)`` or a list of pairs.

    Returns:
        Natural log of band power. Shape: (n, C, n_bands).
    """
    x = _check_windows(x).astype(np.float64, copy=False)  # float32 Welch would depend on batch layout
    edges = _band_edges(bands)
    nperseg = min(x.shape[-1], int(round(2 * sfreq)))
    freqs, psd = welch(x, fs=sfreq, nperseg=nperseg, axis=-1)  # psd: (n, C, n_freqs)
    df = freqs[1] - freqs[0]
    out = np.empty(x.shape[:2] + (len(edges),), dtype=np.float64)
    for b, (lo, hi) in enumerate(edges):
        in_band = (freqs >= lo) & (freqs < hi)
        if not in_band.any():
            raise ValueError(f"band ({lo}, {hi}) Hz holds no frequency bin for T={x.shape[-1]} at {sfreq} Hz")
        out[..., b] = psd[..., in_band].sum(axis=-1) * df
    return np.log(np.maximum(out, np.finfo(np.float64).tiny))


def differential_entropy(x: np.ndarray, sfreq: float, bands: BandSpec = BANDS, order: int = 4) -> np.ndarray:
    """Differential entropy of each band-passed channel under a Gaussian assumption.

    DE = ½·log(2πe·σ²), with σ² the variance of the signal after a zero-phase Butterworth band-pass
    (``sosfiltfilt``, so no phase shift and an effective order of ``2 * order``). For Gaussian band-limited
    signals this equals the log band power up to a constant; it is the standard DEAP/SEED feature.

    Args:
        x: EEG windows. Shape: (n, C, T).
        sfreq: Sampling rate in Hz; every band's high edge must be below Nyquist.
        bands: Band edges in Hz.
        order: Butterworth order of each band-pass design.

    Returns:
        DE in nats. Shape: (n, C, n_bands).
    """
    x = _check_windows(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64, copy=False)
    edges = _band_edges(bands)
    out = np.empty(x.shape[:2] + (len(edges),), dtype=np.float64)
    for b, (lo, hi) in enumerate(edges):
        if hi >= sfreq / 2:
            raise ValueError(f"band ({lo}, {hi}) Hz reaches Nyquist ({sfreq / 2} Hz)")
        sos = butter(order, [lo, hi] if lo > 0 else hi, btype="bandpass" if lo > 0 else "lowpass",
                     fs=sfreq, output="sos")
        if x.dtype == np.float32:
            sos = sos.astype(np.float32)  # filter cache data in float32: ~1.6x faster, DE changes < 1e-5
        var = sosfiltfilt(sos, x, axis=-1).var(axis=-1, dtype=np.float64)
        out[..., b] = 0.5 * np.log(2 * np.pi * np.e * np.maximum(var, np.finfo(np.float64).tiny))
    return out


def _find_peaks_rows(y: np.ndarray, height: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.signal.find_peaks`` on every row of ``y`` with one call.

    Rows are laid end to end with a gap of ``distance + 1`` samples between them. The gap is filled with a
    value above every sample (so a row's first and last samples are never peaks, exactly as for a lone
    row) and given an infinite height threshold (so the gap itself is never a peak); because the gap is
    longer than ``distance``, peaks of different rows never suppress each other.

    Args:
        y: Signals. Shape: (m, T).
        height: Per-row minimum peak height. Shape: (m,).
        distance: Minimum samples between peaks of one row.

    Returns:
        ``(row, pos)`` of every peak, sorted by row then position. Shape: (n_peaks,) each.
    """
    m, n_times = y.shape
    gap = distance + 1
    stride = n_times + gap
    fill = float(np.max(y)) + 1.0 if y.size else 1.0
    flat = np.full((m, stride), fill, dtype=np.float64)
    flat[:, :n_times] = y
    thr = np.full((m, stride), np.inf)
    thr[:, :n_times] = height[:, None]
    peaks, _ = find_peaks(flat.reshape(-1), height=thr.reshape(-1), distance=max(1, distance))
    return peaks // stride, peaks % stride


def _gsr_features(x: np.ndarray, sfreq: float) -> np.ndarray:
    """Rows of GSR. Shape: (m, T) -> (m, 6) = level, slope, n_rise, rise_amp, n_fall, fall_amp."""
    m, n_times = x.shape
    t = np.arange(n_times) / sfreq
    tc = t - t.mean()
    level = x.mean(axis=1)
    slope = ((x - level[:, None]) @ tc) / (tc @ tc)  # least-squares slope, units per second
    # Phasic activity = rate of change of the 1 Hz low-passed signal: skin-conductance responses are fast
    # rises (falls for skin *resistance*, which DEAP records) on a slow tonic drift. Both directions are
    # kept so the features do not depend on the sensor's polarity.
    sos = butter(2, min(1.0, 0.4 * sfreq), btype="lowpass", fs=sfreq, output="sos")
    smooth = sosfiltfilt(sos, x, axis=-1) if n_times > 15 else x
    rate = np.diff(smooth, axis=-1) * sfreq
    feats = [level, slope]
    for sign in (1.0, -1.0):
        d = sign * rate
        med = np.median(d, axis=1)
        mad = 1.4826 * np.median(np.abs(d - med[:, None]), axis=1)
        # Noise floor from the robust spread; the 20 %-of-max term stops ringing around one large
        # response from being counted as many small ones.
        height = np.maximum(np.maximum(med + 3 * mad, 0.2 * d.max(axis=1)), np.finfo(np.float64).eps)
        row, pos = _find_peaks_rows(d, height, distance=int(round(sfreq)))
        count = np.bincount(row, minlength=m).astype(np.float64)
        amp_sum = np.bincount(row, weights=d[row, pos], minlength=m)
        feats += [count, np.divide(amp_sum, count, out=np.zeros(m), where=count > 0)]
    return np.stack(feats, axis=1)


def _ecg_features(x: np.ndarray, sfreq: float) -> np.ndarray:
    """Rows of ECG. Shape: (m, T) -> (m, 3) = mean HR (bpm), SDNN (ms), RMSSD (ms).

    R peaks are maxima of the rectified 5–15 Hz band (the QRS band, so P/T waves and baseline wander
    drop out, and rectifying makes the detector indifferent to lead polarity) above 40 % of the row's
    99th percentile (robust to one artefact spike), at least 0.3 s apart (≤ 200 bpm).

    Few beats: with ≥ 2 beats HR = 60 / mean RR; with fewer it falls back to 60 · beats / duration
    (coarse, but finite, so classifiers never see NaN). SDNN needs ≥ 3 beats and RMSSD ≥ 3 beats, else 0.
    """
    m, n_times = x.shape
    hi = min(15.0, 0.45 * sfreq)
    sos = butter(3, [5.0, hi], btype="bandpass", fs=sfreq, output="sos")
    env = np.abs(sosfiltfilt(sos, x, axis=-1))
    height = np.maximum(0.4 * np.percentile(env, 99, axis=1), np.finfo(np.float64).tiny)
    row, pos = _find_peaks_rows(env, height, distance=int(round(0.3 * sfreq)))
    n_beats = np.bincount(row, minlength=m).astype(np.float64)

    same = row[1:] == row[:-1]
    rr = np.diff(pos)[same] / sfreq  # seconds
    rr_row = row[1:][same]
    n_rr = np.bincount(rr_row, minlength=m).astype(np.float64)
    mean_rr = np.divide(np.bincount(rr_row, weights=rr, minlength=m), n_rr, out=np.zeros(m), where=n_rr > 0)
    hr = np.where(n_rr > 0, 60.0 / np.where(n_rr > 0, mean_rr, 1.0), 60.0 * n_beats / (n_times / sfreq))

    dev2 = (rr - mean_rr[rr_row]) ** 2
    ss = np.bincount(rr_row, weights=dev2, minlength=m)
    sdnn = np.sqrt(np.divide(ss, n_rr - 1, out=np.zeros(m), where=n_rr > 1))

    succ = rr_row[1:] == rr_row[:-1]
    dd = np.diff(rr)[succ] ** 2
    dd_row = rr_row[1:][succ]
    n_dd = np.bincount(dd_row, minlength=m).astype(np.float64)
    rmssd = np.sqrt(np.divide(np.bincount(dd_row, weights=dd, minlength=m), n_dd, out=np.zeros(m),
                              where=n_dd > 0))
    return np.stack([hr, 1000.0 * sdnn, 1000.0 * rmssd], axis=1)


def peripheral_features(x: np.ndarray, sfreq: float, kind: Literal["gsr", "ecg"] = "gsr") -> np.ndarray:
    """Simple physiological features per channel of peripheral windows.

    ``gsr``: level (mean), slope (least squares, units/s), and count and mean amplitude of phasic peaks
    of the low-passed signal's rate of change, rising and falling (6 features). ``ecg``: mean heart rate
    (bpm), SDNN and RMSSD (ms) from R peaks (3 features). Use windows of several seconds: a 1 s window
    holds about one beat, for which HR is a coarse beat count and HRV is 0.

    Args:
        x: Peripheral windows. Shape: (n, C, T).
        sfreq: Sampling rate in Hz.
        kind: ``"gsr"`` or ``"ecg"``.

    Returns:
        Shape: (n, C, 6) for GSR, (n, C, 3) for ECG.
    """
    x = _check_windows(x).astype(np.float64, copy=False)
    n, c, n_times = x.shape
    rows = x.reshape(n * c, n_times)
    if kind == "gsr":
        feats = _gsr_features(rows, sfreq)
    elif kind == "ecg":
        feats = _ecg_features(rows, sfreq)
    else:
        raise ValueError(f"unknown peripheral kind {kind!r}; expected 'gsr' or 'ecg'")
    return feats.reshape(n, c, -1)


def extract_features(
    cache: WindowSource,
    window_s: float,
    rows: np.ndarray | None = None,
    kind: Literal["de", "bandpower"] = "de",
    peripheral: bool = False,
    chunk_size: int = 256,
    bands: BandSpec = BANDS,
) -> np.ndarray:
    """Feature matrix for rows of the cache's ``window_s`` WindowTable, read in chunks.

    Only ``chunk_size`` windows are in memory at once (a DEAP 5 s chunk of 256 × 32 × 640 float64 is
    ~42 MB), so peak memory does not grow with the dataset. EEG features come first, flattened
    channel-major (channel 0's bands, then channel 1's, ...); with ``peripheral`` the peripheral features
    follow, computed on the longest window of the contract that contains each row's window (module
    docstring explains why).

    Args:
        cache: A ``WindowCache`` (contract 2) or anything with the same ``windows``/``get_windows``.
        window_s: Window length in seconds; one of ``cache.contract.window_s``.
        rows: Row indices into ``cache.windows(window_s)``. Shape: (n_rows,). None = all rows.
        kind: ``"de"`` (differential entropy) or ``"bandpower"`` (log Welch band power).
        peripheral: Append GSR or ECG features of the contract's peripheral modality.
        chunk_size: Windows read per ``get_windows`` call.
        bands: EEG band edges in Hz.

    Returns:
        Shape: (n_rows, C_eeg * n_bands [+ C_pps * n_pps_features]).
    """
    contract = cache.contract
    if kind not in ("de", "bandpower"):
        raise ValueError(f"unknown feature kind {kind!r}; expected 'de' or 'bandpower'")
    eeg_fn = differential_entropy if kind == "de" else band_power
    table = cache.windows(window_s)
    rows = np.arange(len(table)) if rows is None else np.asarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= len(table)):
        raise IndexError(f"row indices must lie in [0, {len(table)}), got [{rows.min()}, {rows.max()}]")
    pps = contract.peripheral if peripheral else None
    if peripheral and pps is None:
        raise DataFormatError(getattr(cache, "path", "<cache>"), "contract.modalities",
                              [m.name for m in contract.modalities], "a peripheral modality (gsr or ecg)")
    if pps is not None and pps.name not in ("gsr", "ecg"):
        raise DataFormatError(getattr(cache, "path", "<cache>"), "contract.peripheral.name", pps.name,
                              "'gsr' or 'ecg'")
    long_s = max(contract.window_s)
    per_long = int(round(long_s / window_s))
    if abs(per_long * window_s - long_s) > 1e-9:
        raise ValueError(f"longest window {long_s} s is not a whole number of {window_s} s windows")

    blocks = []
    for start in range(0, len(rows), max(1, chunk_size)):
        r = rows[start:start + chunk_size]
        subj, trial, win = table.subject[r], table.trial[r], table.window[r]
        x = cache.get_windows(contract.eeg.name, window_s, subj, trial, win)
        feats = [eeg_fn(x, contract.eeg.sfreq, bands).reshape(len(r), -1)]
        if pps is not None:
            xp = cache.get_windows(pps.name, long_s, subj, trial, win // per_long)
            feats.append(peripheral_features(xp, pps.sfreq, kind=pps.name).reshape(len(r), -1))
        blocks.append(np.concatenate(feats, axis=1))
    if not blocks:
        n_feat = contract.eeg.n_chans * len(_band_edges(bands))
        if pps is not None:
            n_feat += pps.n_chans * len(GSR_FEATURES if pps.name == "gsr" else ECG_FEATURES)
        return np.empty((0, n_feat))
    return np.concatenate(blocks, axis=0)
