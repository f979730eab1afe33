"""Signal models for the synthetic datasets: what the method should be able to find, and nothing else.

Three kinds of structure are planted, each switchable on its own:

* **Stimulus-locked latent** (always on): per stimulus one slow (0.05–1 Hz) time course shared by every
  subject who watches it — inter-subject synchronisation. It modulates the EEG alpha envelope, adds a small
  slow component on frontal/occipital channels, triggers GSR phasic responses and modulates heart rate, so
  EEG and the peripheral signal are synchronised with each other (cross-modal synchronisation).
* **Label effects** (scaled by ``effect``; ``effect=0`` removes them *exactly*): frontal alpha asymmetry with
  valence, beta/gamma power with arousal, GSR tonic level and phasic rate with arousal, heart rate with
  arousal. They act during the stimulus only, driven by each subject's own rating class (±1).
* **Subject background**: 1/f EEG, per-subject alpha frequency, gains, offsets and noise levels, present in
  baseline and stimulus alike.

Randomness is drawn in a fixed order and amount whatever the labels are, so with ``effect=0`` the signals
are bit-identical for any ratings (tested). Everything is vectorised over trials and channels.
"""

from __future__ import annotations

import numpy as np

# Fixed stream ids combined with the user seed: numpy Generators seeded with [seed, stream, index] give
# independent, reproducible streams per subject / stimulus, so subsets of a dataset are consistent.
STREAM_SIGNAL, STREAM_RATING, STREAM_STIMULUS, STREAM_AFFECT, STREAM_CLIP = 1, 2, 3, 4, 5

LATENT_SFREQ = 16.0  # the latent is band-limited below 1 Hz; it is built on this grid and interpolated

# Label-effect sizes at effect=1 (log-amplitude gains per unit of rating class ±1, or bpm).
ALPHA_ASYMMETRY = 0.25  # frontal alpha: right ×e^(+a), left ×e^(−a) for high valence (approach = left active)
FAST_AROUSAL = 0.35  # 14–45 Hz amplitude ×e^(±a) with arousal
GSR_TONIC_AROUSAL = 0.05  # tonic level ×e^(±a)
GSR_RATE_AROUSAL = 0.6  # spontaneous phasic response rate ×e^(±a)
HR_AROUSAL_BPM = 6.0  # heart rate ± bpm

# Stimulus-latent couplings (not label related).
ALPHA_LATENT_AM = 0.35  # alpha envelope ×e^(0.35 z)
SLOW_LATENT_UV = 3.0  # additive slow component, µV per unit latent
HR_LATENT_BPM = 3.0


def make_generator(seed: int, stream: int, index: int) -> np.random.Generator:
    """Independent generator for (seed, stream, index) — e.g. the signals of subject 3."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream, index])


def _smooth_band(freqs: np.ndarray, lo: float, hi: float, edge: float) -> np.ndarray:
    """Band-pass gain with raised-cosine edges of width ``edge`` Hz (smooth, so no ringing)."""
    def ramp(x: np.ndarray) -> np.ndarray:
        return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))

    return ramp((freqs - lo) / edge + 0.5) * ramp((hi - freqs) / edge + 0.5)


def make_band_noise(rng: np.random.Generator, shape: tuple[int, ...], n_times: int, gain: np.ndarray) -> np.ndarray:
    """Gaussian noise with amplitude spectrum ``gain``, scaled to unit variance.

    Args:
        rng: Source of randomness.
        shape: Leading dimensions, e.g. (n_trials, n_chans).
        n_times: Output length.
        gain: Amplitude response over ``rfftfreq(n_times)`` bins, broadcastable to shape + (n_freqs,).

    Returns:
        Shape: shape + (n_times,) float64 with variance ≈ 1 per row.
    """
    import scipy.fft

    n_f = n_times // 2 + 1
    gain = np.broadcast_to(np.asarray(gain, dtype=np.float64), (*shape, n_f)).copy()
    gain[..., 0] = 0.0
    norm = np.sqrt(2.0 * np.sum(gain**2, axis=-1, keepdims=True) / n_times)
    gain /= np.sqrt(2.0) * np.maximum(norm, 1e-12)
    # Draw only the bins inside the pass band: narrow bands (alpha) cost a fraction of the full spectrum.
    used = np.flatnonzero(np.any(gain.reshape(-1, n_f) > 1e-9 * gain.max(), axis=0))
    band = slice(used[0], used[-1] + 1) if used.size else slice(0, 0)
    coeffs = np.zeros((*shape, n_f), dtype=np.complex128)
    n_band = band.stop - band.start
    coeffs.real[..., band] = rng.standard_normal((*shape, n_band), dtype=np.float32) * gain[..., band]
    coeffs.imag[..., band] = rng.standard_normal((*shape, n_band), dtype=np.float32) * gain[..., band]
    return scipy.fft.irfft(coeffs, n=n_times, norm="ortho", workers=-1)


def make_stimulus_latent(seed: int, stimulus: int, n_times: int, sfreq: float) -> np.ndarray:
    """The shared stimulus-locked time course of one stimulus, unit variance, 0.05–1 Hz.

    Built on a coarse grid and linearly interpolated, so the same stimulus has the same latent at any
    sampling rate (EEG at 128 Hz and ECG at 256 Hz stay aligned).

    Returns:
        Shape: (n_times,) float64.
    """
    duration = n_times / sfreq
    n_coarse = int(np.ceil(duration * LATENT_SFREQ)) + 2
    rng = make_generator(seed, STREAM_STIMULUS, stimulus)
    freqs = np.fft.rfftfreq(n_coarse, 1.0 / LATENT_SFREQ)
    coarse = make_band_noise(rng, (), n_coarse, _smooth_band(freqs, 0.05, 1.0, 0.05))
    coarse = (coarse - coarse.mean()) / max(coarse.std(), 1e-12)
    t = np.arange(n_times) / sfreq
    return np.interp(t, np.arange(n_coarse) / LATENT_SFREQ, coarse)


def make_stimulus_mask(n_baseline: int, n_times: int, sfreq: float, ramp_s: float = 0.5) -> np.ndarray:
    """0 during the baseline, 1 during the stimulus, with a short raised-cosine onset ramp.

    Returns:
        Shape: (n_times,) float64.
    """
    t = (np.arange(n_times) - n_baseline) / (ramp_s * sfreq)
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(t, 0.0, 1.0))


# ----------------------------------------------------------------------------------------------- EEG


def draw_eeg_params(rng: np.random.Generator, n_chans: int, posterior: np.ndarray, dc_uv: float = 0.0) -> dict:
    """Subject-specific EEG background: gains, offsets, noise, alpha frequency and topography.

    Args:
        rng: The subject's signal generator.
        n_chans: Number of EEG channels.
        posterior: Boolean mask of parietal/occipital channels (stronger alpha).
        dc_uv: Electrode DC level (≈4200 µV for the Emotiv headset of DREAMER, 0 for DEAP's filtered data).
    """
    gain = np.exp(rng.normal(0.0, 0.2) + rng.normal(0.0, 0.1, n_chans))
    return {
        "gain": gain,
        "offset": dc_uv + rng.normal(0.0, 30.0 if dc_uv else 1.0, n_chans),
        "noise_uv": rng.uniform(1.0, 3.0) * np.ones(n_chans),
        "bg_uv": rng.uniform(10.0, 16.0) * np.ones(n_chans),
        "alpha_uv": rng.uniform(4.0, 8.0) * np.where(posterior, 1.8, 1.0),
        "fast_uv": rng.uniform(2.5, 4.0) * np.ones(n_chans),
        "alpha_hz": rng.uniform(9.0, 11.0),
        "exponent": rng.uniform(0.8, 1.1),
        "slow_weight": rng.uniform(0.5, 1.5, n_chans),
    }


def make_eeg(
    rng: np.random.Generator,
    params: dict,
    latent: np.ndarray,
    n_baseline: int,
    valence_sign: np.ndarray,
    arousal_sign: np.ndarray,
    effect: float,
    asymmetry: np.ndarray,
    slow_channels: np.ndarray,
    sfreq: float,
    band: tuple[float, float] = (4.0, 45.0),
) -> np.ndarray:
    """EEG in µV: baseline then stimulus, contiguous.

    Args:
        rng: The subject's signal generator (consumed identically whatever the labels).
        params: From :func:`draw_eeg_params`.
        latent: Stimulus latents, Shape: (n_trials, n_stimulus_samples).
        n_baseline: Baseline samples before the stimulus (no stimulus or label effect there).
        valence_sign: ±1 per trial from the subject's own valence class, Shape: (n_trials,).
        arousal_sign: ±1 per trial, Shape: (n_trials,).
        effect: Scale of every label effect; 0 removes them exactly.
        asymmetry: +1 right frontal, −1 left frontal, 0 elsewhere, Shape: (n_chans,).
        slow_channels: Mask of channels carrying the additive slow latent component, Shape: (n_chans,).
        sfreq: Sampling rate in Hz.
        band: Pass band of the background (DEAP's preprocessed data is 4–45 Hz band-passed).

    Returns:
        Shape: (n_trials, n_chans, n_baseline + n_stimulus_samples) float64.
    """
    n_trials, n_stim = latent.shape
    n_chans = params["gain"].shape[0]
    n = n_baseline + n_stim
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    pink = _smooth_band(freqs, band[0], band[1], 2.0) / np.maximum(freqs, 1.0) ** params["exponent"]
    alpha_gain = np.exp(-0.5 * ((freqs - params["alpha_hz"]) / 1.0) ** 2)
    fast_gain = _smooth_band(freqs, 14.0, 45.0, 3.0)
    shape = (n_trials, n_chans)
    mask = make_stimulus_mask(n_baseline, n, sfreq)
    z = np.zeros((n_trials, n))
    z[:, n_baseline:] = latent

    alpha = make_band_noise(rng, shape, n, alpha_gain) * params["alpha_uv"][:, None]
    g_alpha = np.exp(effect * ALPHA_ASYMMETRY * valence_sign[:, None] * asymmetry[None, :])  # (n_trials, n_chans)
    alpha *= 1.0 + mask * (g_alpha[..., None] - 1.0)
    alpha *= np.exp(ALPHA_LATENT_AM * z)[:, None, :]

    fast = make_band_noise(rng, shape, n, fast_gain) * params["fast_uv"][:, None]
    g_fast = np.exp(effect * FAST_AROUSAL * arousal_sign)  # (n_trials,)
    fast *= 1.0 + mask * (g_fast[:, None, None] - 1.0)

    eeg = make_band_noise(rng, shape, n, pink) * params["bg_uv"][:, None]
    eeg += alpha
    eeg += fast
    del alpha, fast
    eeg += (SLOW_LATENT_UV * params["slow_weight"] * slow_channels)[None, :, None] * z[:, None, :]
    eeg *= params["gain"][:, None]
    eeg += rng.standard_normal((n_trials, n_chans, n), dtype=np.float32) * params["noise_uv"][:, None]
    eeg += params["offset"][:, None]
    return eeg


# ----------------------------------------------------------------------------------------------- GSR


def draw_gsr_params(rng: np.random.Generator) -> dict:
    """Subject-specific skin-conductance background in DEAP's raw units (values of order 1e3–1e4)."""
    tonic = rng.uniform(2e3, 8e3)
    return {
        "tonic": tonic,
        "scr_amp": rng.uniform(0.01, 0.03) * tonic,
        "rate_per_min": rng.uniform(2.0, 6.0),
        "noise": rng.uniform(0.5, 3.0),
        "drift": rng.uniform(0.002, 0.006) * tonic,
    }


def _scr_kernel(sfreq: float, rise_s: float = 0.75, decay_s: float = 2.0, length_s: float = 20.0) -> np.ndarray:
    t = np.arange(int(length_s * sfreq)) / sfreq
    k = np.exp(-t / decay_s) - np.exp(-t / rise_s)
    return k / k.max()


def make_gsr(
    rng: np.random.Generator,
    params: dict,
    latent: np.ndarray,
    n_baseline: int,
    arousal_sign: np.ndarray,
    effect: float,
    sfreq: float,
) -> np.ndarray:
    """GSR: tonic level × arousal gain + phasic responses (spontaneous + stimulus-locked) + drift + noise.

    Args:
        latent: Shape: (n_trials, n_stimulus_samples); its peaks trigger phasic responses in every subject.
        arousal_sign: ±1 per trial, Shape: (n_trials,).

    Returns:
        Shape: (n_trials, 1, n_baseline + n_stimulus_samples) float64.
    """
    n_trials, n_stim = latent.shape
    n = n_baseline + n_stim
    mask = make_stimulus_mask(n_baseline, n, sfreq, ramp_s=5.0)  # skin conductance changes slowly
    z = np.zeros((n_trials, n))
    z[:, n_baseline:] = latent
    trial_level = params["tonic"] * np.exp(rng.normal(0.0, 0.05, n_trials))
    uniform = rng.random((n_trials, n))
    sizes = rng.exponential(1.0, (n_trials, n))
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    drift = make_band_noise(rng, (n_trials,), n, _smooth_band(freqs, 0.005, 0.05, 0.01)) * params["drift"]
    noise = rng.standard_normal((n_trials, n)) * params["noise"]

    g_tonic = np.exp(effect * GSR_TONIC_AROUSAL * arousal_sign)
    level = trial_level[:, None] * (1.0 + mask * (g_tonic[:, None] - 1.0))
    rate = params["rate_per_min"] * (1.0 + mask * (np.exp(effect * GSR_RATE_AROUSAL * arousal_sign)[:, None] - 1.0))
    driver = (uniform < rate / 60.0 / sfreq) * sizes  # spontaneous responses
    driver += np.logaddexp(0.0, 3.0 * (z - 1.0)) / sfreq  # stimulus-locked drive where z peaks
    kernel = _scr_kernel(sfreq)
    n_fft = int(2 ** np.ceil(np.log2(n + kernel.size)))
    phasic = np.fft.irfft(np.fft.rfft(driver, n_fft) * np.fft.rfft(kernel, n_fft), n_fft)[:, :n]
    gsr = level + params["scr_amp"] * phasic + drift + noise
    return gsr[:, None, :]


# ----------------------------------------------------------------------------------------------- ECG


def draw_ecg_params(rng: np.random.Generator, n_leads: int = 2) -> dict:
    """Subject-specific heart: resting rate, respiratory sinus arrhythmia, lead amplitudes (mV)."""
    return {
        "hr_bpm": rng.uniform(60.0, 80.0),
        "rsa_bpm": rng.uniform(1.0, 4.0),
        "resp_hz": rng.uniform(0.2, 0.3),
        "amp_mv": rng.uniform(0.8, 1.6, n_leads),
        "offset_mv": rng.normal(0.0, 0.2, n_leads),
        "noise_mv": rng.uniform(0.01, 0.03),
        "wander_mv": rng.uniform(0.05, 0.15),
    }


# P, Q, R, S, T waves as Gaussians over the cardiac phase (position, amplitude, width), R peak = 1.
_PQRST = ((0.15, 0.12, 0.025), (0.27, -0.10, 0.008), (0.30, 1.0, 0.010), (0.33, -0.20, 0.010), (0.55, 0.30, 0.050))


def make_ecg(
    rng: np.random.Generator,
    params: dict,
    latent: np.ndarray,
    n_baseline: int,
    arousal_sign: np.ndarray,
    effect: float,
    sfreq: float,
) -> np.ndarray:
    """ECG with QRS-like beats whose rate follows arousal, the stimulus latent and breathing (HRV).

    Args:
        latent: Shape: (n_trials, n_stimulus_samples) at ``sfreq``.
        arousal_sign: ±1 per trial, Shape: (n_trials,).

    Returns:
        Shape: (n_trials, n_leads, n_baseline + n_stimulus_samples) float64, millivolts.
    """
    n_trials, n_stim = latent.shape
    n = n_baseline + n_stim
    n_leads = params["amp_mv"].shape[0]
    t = np.arange(n) / sfreq
    mask = make_stimulus_mask(n_baseline, n, sfreq, ramp_s=3.0)
    z = np.zeros((n_trials, n))
    z[:, n_baseline:] = latent
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    slow_hrv = make_band_noise(rng, (n_trials,), n, _smooth_band(freqs, 0.01, 0.1, 0.02)) * 2.0
    resp_phase = rng.uniform(0.0, 2 * np.pi, n_trials)
    start_phase = rng.random(n_trials)
    wander = make_band_noise(rng, (n_trials, n_leads), n, _smooth_band(freqs, 0.05, 0.5, 0.1))
    noise = rng.standard_normal((n_trials, n_leads, n)) * params["noise_mv"]

    hr = (params["hr_bpm"] + mask * (effect * HR_AROUSAL_BPM * arousal_sign)[:, None] + HR_LATENT_BPM * z
          + params["rsa_bpm"] * np.sin(2 * np.pi * params["resp_hz"] * t[None, :] + resp_phase[:, None]) + slow_hrv)
    phase = np.mod(start_phase[:, None] + np.cumsum(hr / 60.0 / sfreq, axis=1), 1.0)
    beat = np.zeros_like(phase)
    for pos, amp, width in _PQRST:
        beat += amp * np.exp(-0.5 * ((phase - pos) / width) ** 2)
    ecg = params["amp_mv"][None, :, None] * beat[:, None, :]
    ecg += params["wander_mv"] * wander + noise + params["offset_mv"][None, :, None]
    return ecg
