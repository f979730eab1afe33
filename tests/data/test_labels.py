import numpy as np
import pytest

from physiosync.config import load_config
from physiosync.data.labels import (
    HAHV,
    HALV,
    LAHV,
    LALV,
    dataset_tasks,
    make_binary_labels,
    make_four_labels,
    make_labels,
    resolve_thresholds,
)

DEAP_T = {"valence": 5.0, "arousal": 5.0}


def _tasks(dataset: str, *names: str) -> dict:
    return {k: t for k, t in dataset_tasks(dataset).items() if k in names}


def test_binary_high_means_at_or_above_threshold():
    r = np.array([1.0, 4.99, 5.0, 5.01, 9.0])
    assert make_binary_labels(r, 5.0).tolist() == [0, 0, 1, 1, 1]
    assert make_binary_labels(r, 5.0).dtype == np.int64


# (valence, arousal) -> (fixed, authors' tie quirk); includes the parity fixture's four trials.
CASES = [
    ((7.0, 7.0), (HAHV, HAHV)),
    ((2.0, 7.0), (HALV, HALV)),
    ((7.0, 2.0), (LAHV, LAHV)),
    ((2.0, 2.0), (LALV, LALV)),
    ((5.0, 5.0), (HAHV, LALV)),  # both at the threshold
    ((2.5, 5.0), (HALV, LALV)),  # arousal at the threshold, valence low
    ((5.0, 3.1), (LAHV, LALV)),  # valence at the threshold, arousal low
    ((5.0, 6.0), (HAHV, HAHV)),  # valence tie but arousal clearly high: not overwritten
    ((7.2, 3.1), (LAHV, LAHV)),
    ((6.0, 5.0), (HAHV, HAHV)),
]


@pytest.mark.parametrize(("va", "expected"), CASES)
def test_four_class_with_and_without_tie_quirk(va, expected):
    v, a = va
    fixed = make_four_labels(np.array([v]), np.array([a]), DEAP_T, four_tie_bug=False)[0]
    quirk = make_four_labels(np.array([v]), np.array([a]), DEAP_T, four_tie_bug=True)[0]
    assert (fixed, quirk) == expected


def test_fixed_four_class_agrees_with_binary_labels():
    rng = np.random.default_rng(0)
    v, a = rng.choice([1.0, 3.0, 5.0, 7.0, 9.0], size=(2, 200))
    lab = make_labels({"valence": v, "arousal": a}, _tasks("deap", "arousal", "valence", "four"), DEAP_T)
    expected = 2 * (1 - lab["label_arousal"]) + (1 - lab["label_valence"])
    assert np.array_equal(lab["label_four"], expected)


def _va(thresholds: dict) -> dict:
    """The valence/arousal entries (thresholds now cover every rating; the others are tested below)."""
    return {k: thresholds[k] for k in ("valence", "arousal")}


def test_thresholds_from_facts_and_config():
    assert _va(resolve_thresholds("deap", load_config().preprocess)) == {"valence": 5.0, "arousal": 5.0}
    assert _va(resolve_thresholds("dreamer", load_config().preprocess)) == {"valence": 3.0, "arousal": 3.0}
    cfg = load_config(overrides=["preprocess.thresholds={arousal: 6}"]).preprocess
    assert _va(resolve_thresholds("deap", cfg)) == {"valence": 5.0, "arousal": 6.0}


def test_dreamer_integer_scores():
    scores = np.arange(1.0, 6.0)
    t = resolve_thresholds("dreamer", load_config().preprocess)
    assert make_binary_labels(scores, t["arousal"]).tolist() == [0, 0, 1, 1, 1]
    # (v=3, a=3) is HAHV on DREAMER: the authors' DREAMER rule has no overlap bug.
    assert make_four_labels(np.array([3.0, 2.0]), np.array([3.0, 3.0]), t).tolist() == [HAHV, HALV]
