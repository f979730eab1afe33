"""Small builders shared by several test modules (tiny caches, configs, splits); imported as ``builders``
(``tests/`` is on ``sys.path`` through ``conftest.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physiosync.config import RunConfig
from physiosync.data.cache import FORMAT_VERSION, WindowCache
from physiosync.data.contract import DataContract, ModalitySpec
from physiosync.data.labels import dataset_tasks
from physiosync.data.protocols import Fold, PretrainSplit


def make_cache(root: Path, n_subjects: int = 4, n_trials: int = 3, seconds: int = 10, seed: int = 0) -> WindowCache:
    """A tiny real ``WindowCache`` directory (memmaps + trials.npz + manifest) with random signals."""
    rng = np.random.default_rng(seed)
    contract = DataContract(
        modalities=(ModalitySpec("eeg", "eeg", tuple(f"E{i}" for i in range(4)), 128.0),
                    ModalitySpec("gsr", "peripheral", ("GSR",), 128.0)),
        window_s=(1.0, 5.0),
    )
    path = root / "tiny-cache"
    path.mkdir(parents=True)
    n_samples = seconds * 128
    shapes = {}
    for spec in contract.modalities:
        shape = (n_subjects, n_trials, spec.n_chans, n_samples)
        rng.standard_normal(shape).astype(np.float32).tofile(path / f"{spec.name}.f32")
        shapes[spec.name] = list(shape)
    labels = rng.integers(0, 2, (n_subjects, n_trials))
    np.savez(path / "trials.npz", stimulus=np.tile(np.arange(n_trials), (n_subjects, 1)),
             valence=labels * 5.0, arousal=labels * 5.0, dominance=labels * 5.0, liking=labels * 5.0,
             label_arousal=labels, label_valence=1 - labels,
             label_four=2 * labels + rng.integers(0, 2, labels.shape))
    tasks = {name: t.to_dict() for name, t in dataset_tasks("deap").items() if name in ("arousal", "valence", "four")}
    manifest = {"format_version": FORMAT_VERSION, "hash": f"tiny{seed}", "dataset": "deap",
                "contract": contract.to_dict(), "subjects": [f"s{i + 1:02d}" for i in range(n_subjects)],
                "n_trials": n_trials, "n_samples": n_samples, "sfreq": 128.0, "shapes": shapes,
                "ratings": ["valence", "arousal", "dominance", "liking"], "tasks": tasks}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return WindowCache(path, manifest)


TINY = {
    "model": {"embed_dim": {"1.0": 16, "5.0": 16}, "depth": 1, "n_heads": 2, "projector_dims": [32, 32, 32],
              "cm_dim": 32, "classifier_hidden": [16, 8]},
    "pretrain": {"epochs": 2, "batch_size": 4, "steps_per_epoch": 2},
    "finetune": {"epochs": 3, "batch_size": 8, "t0": 2},
}


def tiny_cfg(seed: int = 0, **pretrain) -> RunConfig:
    data = {**TINY, "seed": seed, "pretrain": {**TINY["pretrain"], **pretrain}}
    return RunConfig.model_validate(data)


SPLIT = PretrainSplit(1.0, train_moments=np.arange(0, 24), val_moments=np.arange(24, 30),
                      train_subjects=np.arange(4), val_subjects=np.arange(4))


def losses(history) -> list:
    return [(h["train"], h["val"]) for h in history]


def make_fold(cache) -> Fold:
    table = cache.windows(5.0)
    rows = np.random.default_rng(0).permutation(len(table))
    return Fold(index=0, protocol="test", leaky=True, train=np.sort(rows[:16]), val=np.sort(rows[16:20]),
                test=np.sort(rows[20:]))


