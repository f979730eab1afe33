"""Baselines that must run under the same folds as PhysioSync (evaluation-protocols.md §4).

``features`` (DE / log band power, GSR and ECG features) and ``classical`` (majority, logistic
regression, RBF-SVM) need only numpy/scipy/sklearn; ``eegnet`` needs torch and is imported lazily, so
``from physiosync.baselines import run_classical`` stays light.
"""

from __future__ import annotations

from typing import Any

from physiosync.baselines.classical import CLASSIFIERS, FoldPrediction, make_classifier, run_classical
from physiosync.baselines.features import (
    BANDS,
    band_power,
    differential_entropy,
    extract_features,
    peripheral_features,
)

_LAZY = {"EEGNet", "train_eegnet", "predict_proba"}

__all__ = [
    "BANDS",
    "CLASSIFIERS",
    "EEGNet",
    "FoldPrediction",
    "band_power",
    "differential_entropy",
    "extract_features",
    "make_classifier",
    "peripheral_features",
    "predict_proba",
    "run_classical",
    "train_eegnet",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from physiosync.baselines import eegnet

        return getattr(eegnet, name)
    raise AttributeError(f"module 'physiosync.baselines' has no attribute {name!r}")
