"""Synthetic ``DREAMER.mat`` reproducing the public file's struct nesting (method-spec §1.2).

``scipy.io.savemat`` of nested dicts (→ 1x1 structs) and object arrays (→ cells) gives, after ``loadmat``
with default options, exactly ``mat['DREAMER'][0, 0]['Data'][0, s]['EEG'][0, 0]['stimuli'][0, 0][k, 0]``
→ (samples, 14) etc. The file is a single MATLAB variable, so (unlike DEAP) the whole dataset is built in
memory before it is written (≈2 GB float64 at full size, like loading the real file); each subject is still
generated from its own (seed, subject) generator, so subsets are consistent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from physiosync.atomic import atomic_path
from physiosync.config import load_dataset_facts
from physiosync.synth import signals as sig
from physiosync.synth.deap import write_mat_deterministic

EMOTIV_DC_UV = 4200.0  # the Emotiv EPOC's raw samples sit on a DC level of ≈4200 µV


def make_clip_lengths(seed: int, n_clips: int, clip_seconds: tuple[float, float], sfreq: float) -> np.ndarray:
    """EEG samples per clip, shared by all subjects (same film, same length). Shape: (n_clips,) int."""
    lo, hi = clip_seconds
    if not 60.0 <= lo <= hi:
        raise ValueError(f"clip_seconds must satisfy 60 <= lo <= hi (preprocessing uses 60 s), got {clip_seconds}")
    rng = sig.make_generator(seed, sig.STREAM_CLIP, 0)
    return np.round(rng.uniform(lo, hi, n_clips) * sfreq).astype(int)


def make_dreamer_scores(seed: int, subject: int, n_clips: int) -> np.ndarray:
    """Integer scores 1..5 (valence, arousal, dominance): per-clip true affect plus subject noise.

    Returns:
        Shape: (n_clips, 3) float64 holding integers.
    """
    true = np.empty((n_clips, 3))
    for k in range(n_clips):
        true[k] = sig.make_generator(seed, sig.STREAM_AFFECT, k).normal([3.0, 3.1, 3.3], [1.1, 0.9, 0.8])
    rng = sig.make_generator(seed, sig.STREAM_RATING, subject)
    return np.clip(np.round(true + rng.normal(0.0, 0.7, (n_clips, 3))), 1, 5)


def _cell(items: list[np.ndarray]) -> np.ndarray:
    """An n×1 MATLAB cell (object array filled element-wise, so equal shapes never merge into one array)."""
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def make_dreamer_subject(seed: int, subject: int, lengths: np.ndarray, effect: float) -> dict:
    """One subject's struct (fields Age, Gender, EEG, ECG, ScoreValence/Arousal/Dominance).

    Args:
        seed: Dataset seed.
        subject: 1-based subject number.
        lengths: EEG samples per clip, Shape: (n_clips,).
        effect: Scale of the label-dependent effects (0 = none).
    """
    facts = load_dataset_facts("dreamer")
    eeg_spec, ecg_spec = facts["modalities"]["eeg"], facts["modalities"]["ecg"]
    fs_eeg, fs_ecg = float(eeg_spec["sfreq"]), float(ecg_spec["sfreq"])
    names = eeg_spec["ch_names"]
    n_clips = len(lengths)
    scores = make_dreamer_scores(seed, subject, n_clips)
    thr = facts["thresholds"]
    valence_sign = np.where(scores[:, 0] >= thr["valence"], 1.0, -1.0)
    arousal_sign = np.where(scores[:, 1] >= thr["arousal"], 1.0, -1.0)

    rng = sig.make_generator(seed, sig.STREAM_SIGNAL, subject)
    eeg_params = sig.draw_eeg_params(rng, len(names), np.array([n[0] in "PO" for n in names]), EMOTIV_DC_UV)
    ecg_params = sig.draw_ecg_params(rng, len(ecg_spec["ch_names"]))
    asym = np.array([{"AF4": 1.0, "F4": 1.0, "F8": 1.0, "AF3": -1.0, "F3": -1.0, "F7": -1.0}.get(n, 0.0) for n in names])
    slow = np.array([n.startswith(("AF", "O")) for n in names])
    age = int(rng.integers(22, 34))
    gender = "male" if rng.random() < 0.6 else "female"
    n_base_eeg = int(round(facts["baseline_s"] * fs_eeg))
    n_base_ecg = int(round(facts["baseline_s"] * fs_ecg))
    parts: dict[str, list[np.ndarray]] = {"eeg_b": [], "eeg_s": [], "ecg_b": [], "ecg_s": []}
    for k, n_eeg in enumerate(lengths):
        n_ecg = int(round(n_eeg * fs_ecg / fs_eeg)) + int(rng.integers(-20, 21))  # devices are not sample-locked
        latent = sig.make_stimulus_latent(seed, k, int(n_eeg), fs_eeg)[None, :]
        one = slice(k, k + 1)
        eeg = sig.make_eeg(rng, eeg_params, latent, n_base_eeg, valence_sign[one], arousal_sign[one], effect,
                           asym, slow, fs_eeg, band=(0.5, 45.0))[0]
        latent_ecg = sig.make_stimulus_latent(seed, k, n_ecg, fs_ecg)[None, :]
        ecg = sig.make_ecg(rng, ecg_params, latent_ecg, n_base_ecg, arousal_sign[one], effect, fs_ecg)[0]
        # The file stores (samples, channels).
        parts["eeg_b"].append(np.ascontiguousarray(eeg[:, :n_base_eeg].T))
        parts["eeg_s"].append(np.ascontiguousarray(eeg[:, n_base_eeg:].T))
        parts["ecg_b"].append(np.ascontiguousarray(ecg[:, :n_base_ecg].T))
        parts["ecg_s"].append(np.ascontiguousarray(ecg[:, n_base_ecg:].T))
    return {
        "Age": str(age),
        "Gender": gender,
        "EEG": {"baseline": _cell(parts["eeg_b"]), "stimuli": _cell(parts["eeg_s"])},
        "ECG": {"baseline": _cell(parts["ecg_b"]), "stimuli": _cell(parts["ecg_s"])},
        "ScoreValence": scores[:, 0:1].copy(),
        "ScoreArousal": scores[:, 1:2].copy(),
        "ScoreDominance": scores[:, 2:3].copy(),
    }


def build_dreamer_struct(
    n_subjects: int = 6,
    n_trials: int = 18,
    seed: int = 0,
    effect: float = 1.0,
    clip_seconds: tuple[float, float] = (65.0, 80.0),
) -> dict:
    """The ``DREAMER`` struct as nested dicts / object arrays, ready for ``scipy.io.savemat``.

    Separate from the writer so tests can damage one field and check the reader's error.
    """
    if n_subjects < 1 or n_trials < 1:
        raise ValueError(f"need at least one subject and one clip, got {n_subjects} x {n_trials}")
    facts = load_dataset_facts("dreamer")
    lengths = make_clip_lengths(seed, n_trials, clip_seconds, facts["modalities"]["eeg"]["sfreq"])
    data = np.empty((1, n_subjects), dtype=object)
    for s in range(n_subjects):
        data[0, s] = make_dreamer_subject(seed, s + 1, lengths, effect)
    electrodes = np.empty((1, len(facts["modalities"]["eeg"]["ch_names"])), dtype=object)
    electrodes[0, :] = facts["modalities"]["eeg"]["ch_names"]
    return {
        "Data": data,
        "EEG_SamplingRate": float(facts["modalities"]["eeg"]["sfreq"]),
        "ECG_SamplingRate": float(facts["modalities"]["ecg"]["sfreq"]),
        "EEG_Electrodes": electrodes,
        "noOfSubjects": float(n_subjects),
        "noOfVideoSequences": float(n_trials),
        "Disclaimer": "Synthetic data generated by physiosync synth; not the DREAMER recordings.",
        "Provider": "physiosync synth",
        "Version": "synthetic-1.0",
        "Acknowledgement": "Structure follows the public DREAMER.mat (Katsigiannis & Ramzan, IEEE JBHI 2018).",
    }


def save_dreamer_struct(path: str | Path, dreamer: dict) -> Path:
    """Write a ``DREAMER`` struct atomically (temp file + rename) with a deterministic header."""
    path = Path(path)
    with atomic_path(path) as tmp:
        write_mat_deterministic(tmp, {"DREAMER": dreamer})
        tmp.chmod(0o644)  # a dataset file, not a secret: the temp file's 0600 would follow the rename
    return path


def write_synthetic_dreamer(
    path: str | Path,
    n_subjects: int = 6,
    n_trials: int = 18,
    seed: int = 0,
    effect: float = 1.0,
    clip_seconds: tuple[float, float] = (65.0, 80.0),
) -> Path:
    """Write a synthetic ``DREAMER.mat`` atomically; return its path.

    Args:
        path: Target file, or a folder (then ``<folder>/DREAMER.mat``).
        n_subjects: Subjects (real DREAMER: 23).
        n_trials: Film clips per subject (real DREAMER: 18).
        seed: Dataset seed; the same seed gives a byte-identical file.
        effect: Scale of every label-dependent effect; 0 gives a dataset with no label information.
        clip_seconds: Range of clip durations (real DREAMER: ≈65–390 s); at least 60 s.
    """
    path = Path(path)
    if path.suffix.lower() != ".mat":
        path = path / "DREAMER.mat"
    return save_dreamer_struct(path, build_dreamer_struct(n_subjects, n_trials, seed, effect, clip_seconds))
