"""Synthetic DEAP in the exact ``data_preprocessed_python`` / ``data_preprocessed_matlab`` formats.

Each ``sNN.dat`` is a pickle of ``{'data': float64 (n_trials, 40, 8064), 'labels': float64 (n_trials, 4)}``
(``sNN.mat`` holds the same two variables), so :func:`physiosync.data.readers.read_deap` loads them unchanged.
Subjects are generated and written one at a time (peak memory ≈ one subject) from generators seeded by
(seed, subject), so ``s03`` is the same file whether 6 or 32 subjects are written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from physiosync.atomic import atomic_path
from physiosync.config import load_dataset_facts
from physiosync.synth import signals as sig
from physiosync.synth.py2pickle import dump_py2

MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: physiosync synth"

# Non-EEG, non-GSR channels of the 40 (hEOG, vEOG, zEMG, tEMG, respiration, plethysmograph, temperature):
# filled with plausible label-free signals so the files look like DEAP's; the method never reads them.
_OTHER_CHANNELS = (32, 33, 34, 35, 37, 38, 39)


def make_deap_ratings(seed: int, subject: int, n_trials: int) -> np.ndarray:
    """Ratings (valence, arousal, dominance, liking) on 1–9: a per-video "true" affect plus subject noise.

    Sizes are chosen so that ≈57 % of valence and ≈59 % of arousal ratings are high (≥ 5), as in DEAP,
    with occasional exact 5.0 ties (the slider's middle), rounded to 2 decimals like the real labels.

    Returns:
        Shape: (n_trials, 4) float64.
    """
    true = np.empty((n_trials, 4))
    for k in range(n_trials):
        g = sig.make_generator(seed, sig.STREAM_AFFECT, k)
        true[k] = g.normal([5.35, 5.55, 5.2, 5.6], [1.7, 1.5, 1.3, 1.6])
    rng = sig.make_generator(seed, sig.STREAM_RATING, subject)
    ratings = true + rng.normal(0.0, [1.3, 1.3, 1.5, 1.5], (n_trials, 4))
    ratings[:, 3] = 0.5 * ratings[:, 3] + 0.5 * ratings[:, 0]  # liking follows valence
    ties = rng.random((n_trials, 4)) < 0.04
    ratings = np.round(np.clip(ratings, 1.0, 9.0), 2)
    ratings[ties] = 5.0
    return ratings


def make_deap_subject(seed: int, subject: int, n_trials: int, effect: float) -> tuple[np.ndarray, np.ndarray]:
    """One subject's ``data`` and ``labels`` arrays.

    Args:
        seed: Dataset seed.
        subject: 1-based subject number.
        n_trials: Trials (= videos; trial k shows video k to every subject).
        effect: Scale of the label-dependent effects (0 = none).

    Returns:
        data Shape: (n_trials, 40, 8064) float64; labels Shape: (n_trials, 4) float64.
    """
    facts = load_dataset_facts("deap")
    sfreq = facts["modalities"]["eeg"]["sfreq"]
    n_total = facts["n_samples_file"]
    n_base = int(round(facts["baseline_s"] * sfreq))
    names = facts["modalities"]["eeg"]["ch_names"]
    labels = make_deap_ratings(seed, subject, n_trials)
    thr = facts["thresholds"]
    valence_sign = np.where(labels[:, 0] >= thr["valence"], 1.0, -1.0)
    arousal_sign = np.where(labels[:, 1] >= thr["arousal"], 1.0, -1.0)
    latent = np.stack([sig.make_stimulus_latent(seed, k, n_total - n_base, sfreq) for k in range(n_trials)])

    rng = sig.make_generator(seed, sig.STREAM_SIGNAL, subject)
    eeg_params = sig.draw_eeg_params(rng, len(names), _mask(names, ("P", "O")))
    gsr_params = sig.draw_gsr_params(rng)
    asym = _mask(names, ("Fp2", "AF4", "F4", "F8")).astype(float) - _mask(names, ("Fp1", "AF3", "F3", "F7"))
    slow = _mask(names, ("Fp", "AF", "O"))
    data = np.empty((n_trials, facts["n_channels_file"], n_total))
    data[:, 0:32] = sig.make_eeg(rng, eeg_params, latent, n_base, valence_sign, arousal_sign, effect, asym, slow, sfreq)
    data[:, 36:37] = sig.make_gsr(rng, gsr_params, latent, n_base, arousal_sign, effect, sfreq)
    data[:, list(_OTHER_CHANNELS)] = _make_other_channels(rng, n_trials, n_total, sfreq)
    return data, labels


def _mask(names: list[str], prefixes: tuple[str, ...]) -> np.ndarray:
    """Channels whose name starts with one of ``prefixes`` (exact names work as their own prefix)."""
    return np.array([any(n.startswith(p) for p in prefixes) for n in names])


def _make_other_channels(rng: np.random.Generator, n_trials: int, n: int, sfreq: float) -> np.ndarray:
    """Label-free EOG/EMG/respiration/plethysmograph/temperature stand-ins, Shape: (n_trials, 7, n)."""
    t = np.arange(n) / sfreq
    out = rng.standard_normal((n_trials, 7, n))
    out[:, 0:2] *= 40.0  # EOG, µV
    out[:, 2:4] *= 8.0  # EMG, µV
    resp_hz, pulse_hz = rng.uniform(0.2, 0.3), rng.uniform(1.0, 1.3)
    out[:, 4] = 1e3 * np.sin(2 * np.pi * resp_hz * t) + 20.0 * out[:, 4] - 2e3
    out[:, 5] = 5e3 * np.sin(2 * np.pi * pulse_hz * t) ** 8 + 50.0 * out[:, 5] + 1e4
    out[:, 6] = rng.uniform(30.0, 34.0) + 0.01 * out[:, 6]
    return out


def write_deap_file(path: Path, data: np.ndarray, labels: np.ndarray, format: Literal["python", "matlab"]) -> None:
    """Write one subject atomically, as a Python-2-style pickle (read with latin-1) or a MATLAB v5 file."""
    with atomic_path(path) as tmp:
        if format == "python":
            with open(tmp, "wb") as f:  # as DEAP's own files: Python 2 / numpy 1.x, protocol 2 (py2pickle.py)
                dump_py2({"labels": labels, "data": data}, f)
        else:
            write_mat_deterministic(tmp, {"data": data, "labels": labels})
        tmp.chmod(0o644)  # a dataset file, not a secret: the temp file's 0600 would follow the rename


def write_mat_deterministic(path: Path, variables: dict) -> None:
    """``scipy.io.savemat`` with a fixed header text (scipy stamps the creation time, which would make
    files from the same seed differ byte-wise)."""
    import scipy.io

    with open(path, "wb") as f:
        scipy.io.savemat(f, variables, format="5", do_compression=False, oned_as="column")
    with open(path, "r+b") as f:
        f.write(MAT_HEADER.ljust(116, b" "))


def write_synthetic_deap(
    out_dir: str | Path,
    n_subjects: int = 6,
    n_trials: int = 8,
    seed: int = 0,
    effect: float = 1.0,
    format: Literal["python", "matlab"] = "python",
) -> list[Path]:
    """Write ``s01``… in DEAP's format into ``out_dir``; return the files in subject order.

    Args:
        out_dir: Target folder (created). Point ``dataset.data_dir`` at it.
        n_subjects: Subjects (real DEAP: 32).
        n_trials: Trials per subject (real DEAP: 40).
        seed: Dataset seed; the same seed gives byte-identical files.
        effect: Scale of every label-dependent effect; 0 gives a dataset with no label information.
        format: ``"python"`` (``sNN.dat`` pickles) or ``"matlab"`` (``sNN.mat``).
    """
    if format not in ("python", "matlab"):
        raise ValueError(f"format must be 'python' or 'matlab', got {format!r}")
    if n_subjects < 1 or n_trials < 1:
        raise ValueError(f"need at least one subject and one trial, got {n_subjects} x {n_trials}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".dat" if format == "python" else ".mat"
    paths = []
    for s in range(1, n_subjects + 1):
        data, labels = make_deap_subject(seed, s, n_trials, effect)
        path = out_dir / f"s{s:02d}{suffix}"
        write_deap_file(path, data, labels, format)
        paths.append(path)
        del data
    return paths
