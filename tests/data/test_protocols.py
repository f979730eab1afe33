"""Protocol invariants: disjoint splits, every row tested once, no test trial/subject in training or
pre-training (except the leak `paper` is flagged for), determinism, and the folds artefact."""

from __future__ import annotations

import numpy as np
import pytest

from physiosync.config import ProtocolConfig
from physiosync.data.protocols import PretrainSplit, describe_protocol, load_folds, make_folds, save_folds
from physiosync.data.table import WindowTable
from physiosync.errors import ConfigError, DataFormatError

N_SUB, N_TR, N_WIN5 = 6, 8, 12
ALL = ["paper", "stimulus-kfold", "subject-trial-kfold", "loso", "subject-kfold"]


@pytest.fixture(scope="module")
def table() -> WindowTable:
    rng = np.random.default_rng(0)
    stim = np.tile(np.arange(N_TR), (N_SUB, 1))
    val = rng.uniform(1, 9, (N_SUB, N_TR))
    aro = rng.uniform(1, 9, (N_SUB, N_TR))
    la, lv = (aro >= 5).astype(int), (val >= 5).astype(int)
    return WindowTable.from_trials(stim, {"valence": val, "arousal": aro},
                                   {"arousal": la, "valence": lv, "four": 2 * (1 - la) + (1 - lv)}, N_WIN5, 5.0)


def folds_for(table: WindowTable, name: str, seed: int = 0, **kw) -> list:
    n_folds = {"paper": 4, "stimulus-kfold": 4, "subject-trial-kfold": 4, "subject-kfold": 3}.get(name)
    return make_folds(table, ProtocolConfig(name=name, n_folds=n_folds, **kw), seed=seed)


def moments_1s(table: WindowTable, rows: np.ndarray) -> np.ndarray:
    """1 s moment ids of the five slices of each given 5 s row."""
    t, w = table.trial[rows], table.window[rows]
    return np.unique((t[:, None] * 60 + 5 * w[:, None] + np.arange(5)).reshape(-1))


@pytest.mark.parametrize("name", ALL)
def test_splits_disjoint_and_every_row_tested_once(table: WindowTable, name: str) -> None:
    folds = folds_for(table, name)
    counts = np.zeros(len(table), dtype=int)
    for f in folds:
        assert not set(f.train) & set(f.test) and not set(f.val) & set(f.test) and not set(f.train) & set(f.val)
        assert len(f.train) > 0 and len(f.test) > 0 and len(f.val) > 0
        np.add.at(counts, f.test, 1)
        if name == "subject-trial-kfold":
            assert f.subject is not None
            assert set(table.subject[np.r_[f.train, f.val, f.test]]) == {f.subject}
    assert np.all(counts == 1)


@pytest.mark.parametrize("name", ["stimulus-kfold", "subject-trial-kfold"])
def test_stimulus_level_no_test_trial_in_training_or_pretraining(table: WindowTable, name: str) -> None:
    for f in folds_for(table, name):
        test_trials = set(table.trial[f.test])
        assert not test_trials & set(table.trial[np.r_[f.train, f.val]])
        if name == "stimulus-kfold":
            assert not set(table.stimulus[f.test]) & set(table.stimulus[np.r_[f.train, f.val]])
        # validation is whole stimuli/trials carved from the training part
        assert not set(table.trial[f.val]) & set(table.trial[f.train])
        for w, split in f.pretrain.items():
            n_win = int(round(N_WIN5 * 5.0 / w))
            seen = set((np.r_[split.train_moments, split.val_moments] // n_win).tolist())
            assert not seen & test_trials, (w, f.index)
            assert set(split.train_subjects) == set(range(N_SUB))


@pytest.mark.parametrize("name", ["loso", "subject-kfold"])
def test_subject_level_no_test_subject_in_training_or_pretraining(table: WindowTable, name: str) -> None:
    folds = folds_for(table, name)
    if name == "loso":
        assert len(folds) == N_SUB
    for f in folds:
        test_subj = set(table.subject[f.test])
        assert set(f.test_subjects) == test_subj
        assert not test_subj & set(table.subject[np.r_[f.train, f.val]])
        for split in f.pretrain.values():
            assert not test_subj & (set(split.train_subjects) | set(split.val_subjects))
            assert not set(split.train_subjects) & set(split.val_subjects)


def test_paper_is_leaky_and_the_leak_exists(table: WindowTable) -> None:
    for f in folds_for(table, "paper"):
        assert f.leaky
        train_trials = set(zip(table.subject[f.train], table.trial[f.train], strict=True))
        test_trials = set(zip(table.subject[f.test], table.trial[f.test], strict=True))
        assert train_trials & test_trials  # test windows share (subject, trial) with training windows
        # but the moments themselves are disjoint, with all subjects of a moment in one part
        assert not set(table.moment[f.test]) & set(table.moment[f.train])
    assert all(not f.leaky for name in ALL[1:] for f in folds_for(table, name))
    assert "LEAKY" in describe_protocol("paper")
    assert "not leak" in describe_protocol("stimulus-kfold")


def test_paper_pretraining_moments_are_slices_unless_official(table: WindowTable) -> None:
    for f in folds_for(table, "paper"):
        split = f.pretrain[1.0]
        np.testing.assert_array_equal(split.train_moments, moments_1s(table, f.train))
        assert not set(split.train_moments) & set(moments_1s(table, f.test))
        np.testing.assert_array_equal(np.unique(f.pretrain[5.0].train_moments), np.unique(table.moment[f.train]))
    official = make_folds(table, ProtocolConfig(name="paper", official=True), seed=0)
    assert len(official) == 10 and all(len(f.val) == 0 for f in official)
    leaked = [len(set(f.pretrain[1.0].train_moments) & set(moments_1s(table, f.test))) for f in official]
    assert sum(leaked) > 0  # the authors' independent 1 s shuffle puts test slices in pre-training (D6)
    for f in official:  # while the 5 s pre-training folds coincide with the fine-tuning folds
        assert not set(f.pretrain[5.0].train_moments) & set(table.moment[f.test])


def test_official_paper_matches_python_random_seed_42(table: WindowTable) -> None:
    import random

    order = list(range(N_TR * N_WIN5))
    random.seed(42)
    random.shuffle(order)
    n = len(order)
    folds = make_folds(table, ProtocolConfig(name="paper", official=True), seed=123)
    for k, f in enumerate(folds):
        assert set(table.moment[f.test]) == set(order[k * n // 10:(k + 1) * n // 10])


@pytest.mark.parametrize("name", ALL)
def test_deterministic_for_a_seed(table: WindowTable, name: str) -> None:
    a, b, c = folds_for(table, name, seed=1), folds_for(table, name, seed=1), folds_for(table, name, seed=2)
    assert [f.to_dict() for f in a] == [f.to_dict() for f in b]
    assert [f.to_dict() for f in a] != [f.to_dict() for f in c]


def test_subject_trial_kfold_shares_pretraining_across_subjects(table: WindowTable) -> None:
    folds = folds_for(table, "subject-trial-kfold")
    keys = {f.pretrain[1.0].key() for f in folds}
    assert len(folds) == 4 * N_SUB and len(keys) == 4
    first = folds[0].pretrain[1.0]
    assert first == PretrainSplit.from_dict(first.to_dict())
    assert first.key() != PretrainSplit(5.0, first.train_moments, first.val_moments, first.train_subjects,
                                         first.val_subjects).key()


def test_default_fold_counts(table: WindowTable) -> None:
    assert len(make_folds(table, ProtocolConfig(name="stimulus-kfold"), seed=0)) == 2  # 8 stimuli -> 2 of 4
    assert len(make_folds(table, ProtocolConfig(name="subject-trial-kfold"), seed=0)) == 5 * N_SUB
    assert len(make_folds(table, ProtocolConfig(name="subject-kfold"), seed=0)) == N_SUB
    deap = WindowTable.from_trials(np.tile(np.arange(40), (2, 1)), {}, {"arousal": np.zeros((2, 40))}, n_windows=1,
                                   window_s=5.0)
    dreamer = WindowTable.from_trials(np.tile(np.arange(18), (2, 1)), {}, {"arousal": np.zeros((2, 18))}, n_windows=1,
                                      window_s=5.0)
    assert len(make_folds(deap, ProtocolConfig(), seed=0)) == 10
    assert len(make_folds(dreamer, ProtocolConfig(), seed=0)) == 6
    with pytest.raises(ConfigError):
        make_folds(table, ProtocolConfig(name="loso", official=True), seed=0)


def test_save_load_round_trip_and_hash_refusal(table: WindowTable, tmp_path) -> None:
    folds = folds_for(table, "paper")
    path = tmp_path / "folds.json"
    save_folds(folds, path, "abc123", meta={"seed": 0})
    back = load_folds(path, "abc123", meta={"seed": 0})
    assert [f.to_dict() for f in back] == [f.to_dict() for f in folds]
    assert back[0].pretrain[1.0].key() == folds[0].pretrain[1.0].key()
    with pytest.raises(DataFormatError, match="cache_hash"):
        load_folds(path, "other")
    with pytest.raises(DataFormatError, match="meta.seed"):
        load_folds(path, "abc123", meta={"seed": 1})
    assert not [p for p in tmp_path.iterdir() if p.name != "folds.json"]  # no temp file left behind


def test_official_deap_reproduces_the_authors_d6_leak_figure() -> None:
    """method-spec §5.2 computed 85–93 % of a test window's 1 s slices in 1 s pre-training, per fold."""
    z = np.zeros((2, 40))
    deap = WindowTable.from_trials(np.tile(np.arange(40), (2, 1)), {"valence": z, "arousal": z},
                                   {"arousal": z, "valence": z, "four": z}, n_windows=12, window_s=5.0)
    shares = [
        np.isin(moments_1s(deap, f.test), f.pretrain[1.0].train_moments).mean()
        for f in make_folds(deap, ProtocolConfig(name="paper", official=True), seed=0)
    ]
    assert all(0.85 <= s <= 0.93 for s in shares) and 0.88 <= np.mean(shares) <= 0.92
