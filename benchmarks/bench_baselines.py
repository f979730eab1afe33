"""Time the DE + logistic-regression baseline row at full DEAP size under a 10-fold stimulus split.

Target (issue 5): feature extraction + 10 fits/predictions in ≤ 2 min on 2 CPU cores.

    .venv/bin/python benchmarks/bench_baselines.py                 # random data, DEAP-shaped
    .venv/bin/python benchmarks/bench_baselines.py --cache PATH    # a prepared cache directory
    .venv/bin/python benchmarks/bench_baselines.py --subjects 4    # a quick look

Random data: 32 subjects × 40 trials × 60 s at 128 Hz × 32 EEG channels (12 windows of 5 s per trial,
15,360 windows), random binary labels per trial, so accuracy is ~chance and only the timings matter.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from physiosync.baselines.classical import run_classical
from physiosync.baselines.features import extract_features
from physiosync.config import ProtocolConfig
from physiosync.data.contract import DataContract, ModalitySpec
from physiosync.data.protocols import make_folds
from physiosync.data.table import WindowTable


class RandomCache:
    """DEAP-shaped random stand-in for ``WindowCache`` (only what ``extract_features`` reads)."""

    def __init__(self, n_subjects: int, n_trials: int = 40, n_chans: int = 32, seconds: int = 60,
                 sfreq: float = 128.0, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.path = Path("<random>")
        self.sfreq = sfreq
        self.n_samples = int(seconds * sfreq)
        self.contract = DataContract(
            (ModalitySpec("eeg", "eeg", tuple(f"E{i}" for i in range(n_chans)), sfreq),), window_s=(1.0, 5.0))
        self.eeg = rng.standard_normal((n_subjects, n_trials, n_chans, self.n_samples), dtype=np.float32)
        self.labels = rng.integers(0, 2, size=(n_subjects, n_trials))

    def n_windows(self, window_s: float) -> int:
        return int(self.n_samples // round(window_s * self.sfreq))

    def windows(self, window_s: float) -> WindowTable:
        lab = self.labels
        stim = np.broadcast_to(np.arange(lab.shape[1]), lab.shape)
        return WindowTable.from_trials(stim, lab * 8.0 + 1, lab * 8.0 + 1, lab, lab, lab * 3,
                                       self.n_windows(window_s), window_s)

    def get_windows(self, modality, window_s, subject, trial, window) -> np.ndarray:
        w = int(round(window_s * self.sfreq))
        s, k, c, n = self.eeg.shape
        view = self.eeg.reshape(s, k, c, n // w, w)
        return np.asarray(view[np.asarray(subject), np.asarray(trial), :, np.asarray(window), :])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, help="prepared cache directory (default: random DEAP-shaped data)")
    p.add_argument("--subjects", type=int, default=32, help="random data: number of subjects")
    p.add_argument("--window-s", type=float, default=5.0)
    p.add_argument("--label", default="arousal", choices=["arousal", "valence", "four"])
    p.add_argument("--chunk-size", type=int, default=256)
    args = p.parse_args()

    t0 = time.perf_counter()
    if args.cache is not None:
        from physiosync.data.cache import open_cache

        cache = open_cache(args.cache)
    else:
        cache = RandomCache(args.subjects)
    table = cache.windows(args.window_s)
    folds = make_folds(table, ProtocolConfig(name="stimulus-kfold", n_folds=10), seed=0, val_fraction=0.0)
    t_setup = time.perf_counter() - t0
    print(f"data: {len(table)} windows of {args.window_s:g} s, {cache.contract.eeg.n_chans} EEG channels, "
          f"{len(folds)} folds (stimulus-kfold); set-up {t_setup:.1f} s")

    # CPU time is printed too: on a shared machine wall time also measures the neighbours.
    t0, c0 = time.perf_counter(), time.process_time()
    feats = extract_features(cache, args.window_s, kind="de", chunk_size=args.chunk_size)
    t_feat, c_feat = time.perf_counter() - t0, time.process_time() - c0
    print(f"DE features {feats.shape}: {t_feat:.1f} s wall, {c_feat:.1f} s CPU "
          f"({1e3 * t_feat / len(table):.2f} ms/window wall)")

    t0, c0 = time.perf_counter(), time.process_time()
    preds = run_classical(feats, table.label(args.label), folds, "logreg", seed=0)
    t_fit, c_fit = time.perf_counter() - t0, time.process_time() - c0
    acc = np.mean(np.concatenate([pr.y_pred == pr.y_true for pr in preds]))
    print(f"logreg fit+predict, {len(preds)} folds: {t_fit:.1f} s wall, {c_fit:.1f} s CPU; "
          f"pooled test accuracy {acc:.3f} (random labels: ~0.5)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"row total (features + fits): {t_feat + t_fit:.1f} s wall, {c_feat + c_fit:.1f} s CPU "
          f"(target <= 120 s); peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
