"""Training loops: determinism, exact resume after interruption, skip of finished folds, no test leakage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from builders import SPLIT, losses, make_cache, make_fold, tiny_cfg

import physiosync.training.finetune as finetune_mod
from physiosync.data.protocols import Fold
from physiosync.errors import DataFormatError
from physiosync.models import PretrainModel
from physiosync.training.checkpoint import load_checkpoint
from physiosync.training.finetune import finetune_fold
from physiosync.training.pretrain import load_encoder_states, pretrain_split

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: why one thread


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache"))


def encoders_of(result) -> dict:
    return load_checkpoint(result["encoders_path"])["encoders"]


def assert_same_states(a: dict, b: dict, equal: bool = True) -> None:
    same = all(torch.equal(a[m][k], b[m][k]) for m in a for k in a[m])
    assert same == equal


@pytest.mark.parametrize("pairing", ["groups", "augviews"])
def test_pretrain_is_deterministic_and_seed_sensitive(cache, tmp_path, pairing):
    a = pretrain_split(cache, SPLIT, 1.0, tiny_cfg(0, pairing=pairing), "cpu", tmp_path / "a", progress=False)
    b = pretrain_split(cache, SPLIT, 1.0, tiny_cfg(0, pairing=pairing), "cpu", tmp_path / "b", progress=False)
    c = pretrain_split(cache, SPLIT, 1.0, tiny_cfg(1, pairing=pairing), "cpu", tmp_path / "c", progress=False)
    assert a["finished"] and len(a["history"]) == 2 and a["history"][0]["steps"] == 2
    assert {"loss", "top1_eeg", "top1_gsr"} <= set(a["history"][-1]["val"])  # fixed-group monitoring
    assert losses(a["history"]) == losses(b["history"])
    assert_same_states(encoders_of(a), encoders_of(b))
    assert losses(a["history"]) != losses(c["history"])
    assert_same_states(encoders_of(a), encoders_of(c), equal=False)


def test_pretrain_resume_after_interruption_equals_uninterrupted(cache, tmp_path):
    cfg = tiny_cfg(3, epochs=3)
    full = pretrain_split(cache, SPLIT, 1.0, cfg, "cpu", tmp_path / "full", progress=False)
    part = pretrain_split(cache, SPLIT, 1.0, cfg, "cpu", tmp_path / "cut", progress=False, max_epochs_this_call=1)
    assert not part["finished"] and part["encoders_path"] is None and len(part["history"]) == 1
    resumed = pretrain_split(cache, SPLIT, 1.0, cfg, "cpu", tmp_path / "cut", progress=False)
    assert resumed["finished"] and losses(resumed["history"]) == losses(full["history"])
    assert_same_states(encoders_of(resumed), encoders_of(full))


def test_saved_encoders_are_the_trained_ones_and_load_into_finetuning(cache, tmp_path):
    res = pretrain_split(cache, SPLIT, 1.0, tiny_cfg(0), "cpu", tmp_path, progress=False, keep_checkpoint=True)
    trained = load_checkpoint(tmp_path / "checkpoint.pt")["model"]  # the last epoch's weights
    states = load_encoder_states([res["encoders_path"]])
    assert set(states) == {("eeg", 1.0), ("gsr", 1.0)}
    for (mod, _), sd in states.items():
        for k, v in sd.items():
            assert torch.equal(v, trained[f"encoders.{mod}.{k}"])  # D4 fixed: what is saved was trained


def encoder_states(cache) -> dict:
    cfg = tiny_cfg()
    torch.manual_seed(0)
    out = {}
    for w in (1.0, 5.0):
        out.update({(m, w): sd for m, sd in PretrainModel(cache.contract, w, cfg.model).encoder_state().items()})
    return out


def test_finetune_resume_equals_uninterrupted_and_finished_fold_is_skipped(cache, tmp_path, monkeypatch):
    table, fold, cfg, states = cache.windows(5.0), make_fold(cache), tiny_cfg(), encoder_states(cache)
    full = finetune_fold(cache, table, fold, "arousal", states, cfg, "cpu", tmp_path / "full", progress=False)
    part = finetune_fold(cache, table, fold, "arousal", states, cfg, "cpu", tmp_path / "cut", progress=False,
                         max_epochs_this_call=1)
    assert not part["finished"] and (tmp_path / "cut" / "checkpoint.pt").exists()
    resumed = finetune_fold(cache, table, fold, "arousal", states, cfg, "cpu", tmp_path / "cut", progress=False)
    assert resumed["finished"] and not resumed["skipped"]
    np.testing.assert_array_equal(resumed["proba"], full["proba"])
    # Cosine warm restarts, T0 = 2, stepped per epoch: the resumed scheduler continues mid-cycle.
    assert [h["lr"] for h in resumed["history"]] == [h["lr"] for h in full["history"]]
    assert [h["lr"] for h in full["history"]] == pytest.approx([1e-3, 5e-4, 1e-3])
    assert np.array_equal(full["rows"], fold.test) and full["proba"].shape == (len(fold.test), 2)
    assert np.array_equal(full["y_true"], table.label("arousal")[fold.test])
    assert np.array_equal(full["y_pred"], full["proba"].argmax(1))

    def no_training(*a, **k):
        raise AssertionError("a finished fold must not be trained again")

    monkeypatch.setattr(finetune_mod, "sample_index_batches", no_training)
    again = finetune_fold(cache, table, fold, "arousal", states, cfg, "cpu", tmp_path / "full", progress=False)
    assert again["skipped"]
    np.testing.assert_array_equal(again["proba"], full["proba"])


def test_finetune_is_deterministic_trains_only_on_train_rows(cache, tmp_path, monkeypatch):
    table, fold = cache.windows(5.0), make_fold(cache)
    seen: list[np.ndarray] = []
    real = finetune_mod.sample_index_batches

    def spy(*a, **k):
        batches = real(*a, **k)
        seen.extend(batches)
        return batches

    monkeypatch.setattr(finetune_mod, "sample_index_batches", spy)
    a = finetune_fold(cache, table, fold, "four", None, tiny_cfg(0), "cpu", tmp_path / "a", progress=False)
    b = finetune_fold(cache, table, fold, "four", None, tiny_cfg(0), "cpu", tmp_path / "b", progress=False)
    c = finetune_fold(cache, table, fold, "four", None, tiny_cfg(1), "cpu", tmp_path / "c", progress=False)
    used = np.concatenate(seen)
    assert np.isin(used, fold.train).all() and not np.isin(used, fold.test).any()
    assert np.array_equal(np.unique(used), fold.train)  # every training row used, nothing else
    np.testing.assert_array_equal(a["proba"], b["proba"])
    assert a["proba"].shape == (len(fold.test), 4)
    assert not np.array_equal(a["proba"], c["proba"])
    assert set(a["history"][0]["val"]) == {"loss", "accuracy"}


def test_finetune_refuses_a_fold_whose_test_rows_are_in_training(cache, tmp_path):
    table, fold = cache.windows(5.0), make_fold(cache)
    bad = Fold(index=0, protocol="test", leaky=True, train=np.union1d(fold.train, fold.test[:1]), val=fold.val,
               test=fold.test)
    with pytest.raises(ValueError, match="test rows"):
        finetune_fold(cache, table, bad, "arousal", None, tiny_cfg(), "cpu", tmp_path, progress=False)


def test_resume_refuses_a_checkpoint_made_on_other_data(cache, tmp_path):
    cfg = tiny_cfg(0, epochs=2)
    pretrain_split(cache, SPLIT, 1.0, cfg, "cpu", tmp_path, progress=False, max_epochs_this_call=1)
    other = make_cache(tmp_path / "other", seed=1)  # different content hash
    with pytest.raises(DataFormatError, match="cache_hash"):
        pretrain_split(other, SPLIT, 1.0, cfg, "cpu", tmp_path, progress=False)


def test_pretrain_resume_ignores_finetuning_only_model_keys(cache, tmp_path):
    # compare rows that differ only in the classifier share one pre-training, so one row must be able to
    # resume what another row started; a key that shapes the encoders must still be refused.
    cfg = tiny_cfg(0, epochs=2)
    pretrain_split(cache, SPLIT, 1.0, cfg, "cpu", tmp_path, progress=False, max_epochs_this_call=1)
    other_head = cfg.model_copy(update={"model": cfg.model.model_copy(
        update={"fusion": "eeg-only", "confidence_weighting": False, "classifier_hidden": [8]})})
    assert pretrain_split(cache, SPLIT, 1.0, other_head, "cpu", tmp_path, progress=False)["finished"]
    pretrain_split(cache, SPLIT, 1.0, cfg, "cpu", tmp_path / "b", progress=False, max_epochs_this_call=1)
    deeper = cfg.model_copy(update={"model": cfg.model.model_copy(update={"depth": cfg.model.depth + 1})})
    with pytest.raises(DataFormatError, match="config.model"):
        pretrain_split(cache, SPLIT, 1.0, deeper, "cpu", tmp_path / "b", progress=False)


def test_finetune_bf16_gives_probabilities(cache, tmp_path):
    cfg = tiny_cfg().model_copy(update={"precision": "bf16"})
    fold = make_fold(cache)
    res = finetune_fold(cache, cache.windows(5.0), fold, "valence", None, cfg, "cpu", tmp_path, progress=False)
    assert res["proba"].dtype == np.float64 and np.isfinite(res["proba"]).all()
    # The softmax runs in float32 even under bf16 autocast (finetune casts logits up): K = 2 float32
    # probabilities within ~3u each (u = 2^-24), summed in float64, are 1 within ~6u ≈ 4e-7.
    np.testing.assert_allclose(res["proba"].sum(1), 1.0, rtol=1e-6)
