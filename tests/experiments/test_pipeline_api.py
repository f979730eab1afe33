"""The pipeline's public API as `compare` and library users call it: prepared data, run folds, given folds."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from builders import make_cache, tiny_cfg

from physiosync.config import ProtocolConfig
from physiosync.data.fold_windows import folds_at_window, same_folds
from physiosync.data.protocols import load_folds, make_folds
from physiosync.errors import ConfigError
from physiosync.experiments.pipeline import PreparedData, folds_meta, make_run_folds, select_folds


@pytest.fixture()
def data(tmp_path: Path) -> PreparedData:
    cache = make_cache(tmp_path)
    return PreparedData(cache=cache, resolutions=(1.0, 5.0), table=cache.windows(5.0))


def loso_cfg(seed: int = 0):
    return tiny_cfg(seed).model_copy(update={"protocol": ProtocolConfig(name="loso")})


def test_run_folds_are_drawn_once_then_reloaded(data: PreparedData, tmp_path: Path) -> None:
    cfg = loso_cfg()
    first = make_run_folds(cfg, data, tmp_path / "run")
    path = tmp_path / "run" / "folds.json"
    stamp = path.stat().st_mtime_ns
    again = make_run_folds(cfg, data, tmp_path / "run")
    assert len(first) == data.cache.n_subjects and same_folds(first, again)
    assert path.stat().st_mtime_ns == stamp  # reloaded, not redrawn
    assert load_folds(path, data.cache.hash, folds_meta(cfg, data))  # bound to the run's settings


def test_given_folds_replace_differing_saved_ones_and_keep_identical(data: PreparedData, tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    cfg, run = loso_cfg(), tmp_path / "run"
    drawn = make_run_folds(cfg, data, run)
    other = make_folds(data.table, ProtocolConfig(name="loso"), seed=1, pretrain_window_s=data.resolutions,
                       n_windows={w: data.cache.n_windows(w) for w in data.resolutions})
    assert not same_folds(drawn, other)  # another seed draws other validation subjects
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        used = make_run_folds(cfg, data, run, folds=other)
    assert same_folds(used, other) and "replacing folds.json" in caplog.text
    stamp = (run / "folds.json").stat().st_mtime_ns
    assert same_folds(make_run_folds(cfg, data, run, folds=other), other)
    assert (run / "folds.json").stat().st_mtime_ns == stamp  # an identical copy is left as it is
    assert same_folds(make_run_folds(cfg, data, run), other)  # and is what a later plain call uses


def test_select_folds_names_the_folds_there_are(data: PreparedData, tmp_path: Path) -> None:
    folds = make_run_folds(loso_cfg(), data, tmp_path / "run")
    cfg = loso_cfg().model_copy(update={"protocol": ProtocolConfig(name="loso", folds=[2, 0])})
    assert [f.index for f in select_folds(cfg, folds)] == [2, 0]
    assert len(select_folds(loso_cfg(), folds)) == len(folds)
    bad = loso_cfg().model_copy(update={"protocol": ProtocolConfig(name="loso", folds=[9])})
    with pytest.raises(ConfigError, match=r"no fold\(s\) \[9\]; this protocol has folds 0..3"):
        select_folds(bad, folds)


def test_folds_at_a_shorter_window_hold_the_same_seconds(data: PreparedData, tmp_path: Path) -> None:
    folds = make_run_folds(loso_cfg(), data, tmp_path / "run")
    long_t, short_t = data.table, data.cache.windows(1.0)
    short = folds_at_window(folds, long_t, short_t, (1.0,))
    same = folds_at_window(folds, long_t, long_t, (1.0, 5.0))
    assert same_folds(same, folds) and not same_folds(short, folds)
    for f, s in zip(folds, short, strict=True):
        assert set(s.pretrain) == {1.0} and s.pretrain[1.0].key() == f.pretrain[1.0].key()
        for part in ("train", "val", "test"):
            lr, sr = getattr(f, part), getattr(s, part)
            assert len(sr) == 5 * len(lr)
            assert set(zip(short_t.subject[sr], short_t.trial[sr], short_t.window[sr] // 5, strict=True)) == set(
                zip(long_t.subject[lr], long_t.trial[lr], long_t.window[lr], strict=True))
    with pytest.raises(ConfigError, match="not a whole number"):
        folds_at_window(folds, long_t, data.cache.windows(2.0), (1.0,))
