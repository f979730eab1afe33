"""Resume and disk: completion markers written last, stale temp paths cleaned, finished checkpoints dropped.

A SIGKILL can land between any two writes. Each stage's "finished" marker (pre-training ``encoders.pt``,
fine-tuning ``done.json``, compare row ``results.json`` / ``report.md``) is written after everything it
vouches for, so a kill is simulated here by making the write just before (or of) the marker raise; the
re-run must then produce exactly what an uninterrupted run does. Temp paths carry their writer's pid, start
time and host, and only those whose writer is gone (or, for other hosts, untouched for a day) are removed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import physiosync.training.finetune as finetune_mod
import physiosync.training.pretrain as pretrain_mod
from physiosync import atomic
from physiosync.config import load_config
from physiosync.evaluation.report import prediction_path
from physiosync.experiments import compare
from physiosync.experiments.pipeline import run_pipeline
from physiosync.synth import write_synthetic_deap
from physiosync.training.checkpoint import load_checkpoint


class Killed(Exception):
    """Stands for the SIGKILL that interrupts a run at a chosen write."""


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped): nothing runs under it now."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def tag(pid: int, start: int = 1, host: str | None = None) -> str:
    return f"ps{pid}-{start}@{host or atomic._host()}"


def age(path: Path, seconds: float) -> None:
    """Backdate ``path`` (and, for a directory, its entries) by ``seconds``."""
    t = time.time() - seconds
    for p in [path, *(path.iterdir() if path.is_dir() else [])]:
        os.utime(p, (t, t), follow_symlinks=False)


# --------------------------------------------------------------------------------------------------
# temp names and the stale rule (no training)


def test_atomic_temp_names_carry_their_writer_and_are_live_while_it_runs(tmp_path: Path) -> None:
    seen = {}
    with atomic.atomic_path(tmp_path / "x.csv") as tmp:
        seen["name"] = tmp.name
        m = atomic._OWNER.search(tmp.name)
        assert m and int(m["pid"]) == os.getpid() and m["host"] == atomic._host()
        assert atomic.stale_reason(tmp) is None  # our own, in use
        assert atomic.clean_stale_temps(tmp_path) == [] and tmp.exists()
    assert seen["name"].startswith(".x.csv.") and seen["name"].endswith(".tmp")
    assert [p.name for p in tmp_path.iterdir()] == ["x.csv"]


def test_stale_temps_are_removed_and_live_or_foreign_ones_kept(tmp_path: Path) -> None:
    gone = dead_pid()
    plant = {}

    def mk(name: str, is_dir: bool = False) -> Path:
        p = tmp_path / name
        if is_dir:
            p.mkdir()
            (p / "eeg.f32").write_bytes(b"\0" * 64)
        else:
            p.write_bytes(b"partial")
        plant[name] = p
        return p

    dead_dir = mk(f".deap.{tag(gone)}.abc_12.tmp", is_dir=True)  # killed cache build on this host
    dead_file = mk(f".checkpoint.pt.{tag(gone)}.k3j9x.tmp")  # killed checkpoint write
    live = mk(f".deap.{atomic.owner_tag()}.zz9.tmp", is_dir=True)  # this process (a concurrent build)
    foreign_new = mk(f".encoders.pt.{tag(gone, host='other-node-7')}.q1.tmp")  # another machine, recent
    foreign_old = mk(f".encoders.pt.{tag(gone, host='other-node-8')}.q2.tmp")
    age(foreign_old, 2 * 86400)
    legacy_old = mk(".deap-abcdefgh.tmp", is_dir=True)  # made before names carried an owner
    age(legacy_old, 2 * 86400)
    legacy_new = mk(".results.json.k2m4p6.tmp")
    # not temp paths of ours: never touched, however old
    for name in ("notes.tmp", ".hidden", "deap-0123456789ab"):
        age(mk(name), 10 * 86400)

    removed = atomic.clean_stale_temps(tmp_path)
    assert sorted(removed) == sorted([dead_dir, dead_file, foreign_old, legacy_old])
    assert not any(p.exists() for p in removed)
    for p in (live, foreign_new, legacy_new, plant["notes.tmp"], plant[".hidden"], plant["deap-0123456789ab"]):
        assert p.exists(), p.name


def test_a_reused_pid_does_not_keep_a_dead_writers_temp(tmp_path: Path) -> None:
    # In a container every run may get the same pid: the start time tells the writer from its successor.
    start = atomic._start_ticks(os.getpid())
    if start is None:
        pytest.skip("no /proc start times on this OS (the pid alone decides there)")
    reused = tmp_path / f".x.csv.{tag(os.getpid(), start + 1)}.a1.tmp"
    reused.write_text("")
    assert atomic.stale_reason(reused) is not None
    assert atomic.clean_stale_temps(tmp_path) == [reused]


def test_cleanup_recurses_only_when_asked_never_into_live_temps_nor_through_symlinks(tmp_path: Path) -> None:
    gone = dead_pid()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("user data")
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    deep = run / "predictions" / f".predictions_fold0_arousal.csv.{tag(gone)}.p1.tmp"
    deep.write_text("fold,subject")
    link = run / f".link.{tag(gone)}.l1.tmp"
    link.symlink_to(outside, target_is_directory=True)
    live = run / f".deap.{atomic.owner_tag()}.b1.tmp"
    live.mkdir()
    inner = live / f".inner.{tag(gone)}.i1.tmp"  # inside a build in progress: not ours to judge
    inner.write_text("")

    assert atomic.clean_stale_temps(run) == [link]  # top level only
    assert deep.exists() and (outside / "keep.txt").read_text() == "user data"
    assert atomic.clean_stale_temps(run, recursive=True) == [deep]
    assert inner.exists() and live.exists()
    assert atomic.clean_stale_temps(tmp_path / "missing", recursive=True) == []


# --------------------------------------------------------------------------------------------------
# the pipeline (smoke preset, tiny synthetic DEAP)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: why one thread


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("resume")
    write_synthetic_deap(r / "data", n_subjects=3, n_trials=4, seed=3, effect=1.0)
    return r


def cfg_of(root: Path, name: str, *extra: str):
    return load_config(preset="smoke", overrides=[
        f"dataset.data_dir={root / 'data'}", f"cache_dir={root / 'cache'}", f"runs_dir={root / 'runs'}",
        "dataset.origin=synthetic", "protocol.n_folds=2", "protocol.folds=[0]", f"name={name}", *extra,
    ])


@pytest.fixture(scope="module")
def reference(root: Path) -> Path:
    """An uninterrupted run; its files are what every interrupted-and-resumed run must reproduce."""
    run_pipeline(cfg_of(root, "ref"), progress=False)
    return root / "runs" / "ref"


def encoders(run: Path) -> dict[str, dict]:
    return {p.parent.name: load_checkpoint(p)["encoders"] for p in sorted(run.glob("pretrain/*/encoders.pt"))}


def assert_same_run(run: Path, ref: Path) -> None:
    a, b = encoders(run), encoders(ref)
    assert a.keys() == b.keys() and len(a) == 2  # one pre-training per window length (1 s, 5 s)
    for d in a:
        assert all(torch.equal(a[d][m][k], b[d][m][k]) for m in a[d] for k in a[d][m])
        # every epoch's loss terms (the history's ``seconds`` are wall time and differ)
        hist = [json.loads((r / "pretrain" / d / "history.json").read_text()) for r in (run, ref)]
        assert [(h["train"], h["val"]) for h in hist[0]] == [(h["train"], h["val"]) for h in hist[1]]
    assert prediction_path(run, 0, "arousal").read_text() == prediction_path(ref, 0, "arousal").read_text()
    assert (json.loads((run / "results.json").read_text())["labels"]
            == json.loads((ref / "results.json").read_text())["labels"])


def losses(history: list[dict]) -> list[float]:
    return [h["train"]["loss"] for h in history]


KILL_POINTS = {
    # the history write of a finished pre-training (before its encoders.pt marker)
    "pretrain-history": (pretrain_mod, "write_json_atomic"),
    # the marker itself: encoders.pt
    "pretrain-encoders": (pretrain_mod, "save_encoders"),
    # the done.json marker of a fine-tuned fold (after its predictions.npz)
    "finetune-done": (finetune_mod, "write_text_atomic"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_before_a_stage_marker_is_redone_on_resume(root: Path, reference: Path, point: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    module, fn = KILL_POINTS[point]

    def killed(*args: object, **kwargs: object) -> None:
        raise Killed(point)

    monkeypatch.setattr(module, fn, killed)
    cfg = cfg_of(root, f"cut-{point}")
    run = root / "runs" / cfg.name
    with pytest.raises(Killed):
        run_pipeline(cfg, progress=False)
    monkeypatch.undo()
    if point.startswith("pretrain"):
        # the first pre-training trained to the end but is not marked finished; its checkpoint survives
        assert not list(run.glob("pretrain/*/encoders.pt")) and list(run.glob("pretrain/*/checkpoint.pt"))
    else:
        assert list(run.glob("finetune/*/fold*/predictions.npz")) and not list(run.glob("finetune/*/fold*/done.json"))
        assert list(run.glob("finetune/*/fold*/checkpoint.pt"))

    run_pipeline(cfg, progress=False)
    for d in run.glob("pretrain/*"):
        hist = json.loads((d / "history.json").read_text())
        ref_hist = json.loads((reference / "pretrain" / d.name / "history.json").read_text())
        assert losses(hist) == losses(ref_hist) and len(hist) == 1  # smoke: 1 epoch
    assert json.loads((run / "finetune/arousal/fold00/done.json").read_text())["n_test"] > 0
    assert_same_run(run, reference)
    assert not list(run.rglob("checkpoint.pt")) and not list(run.rglob(".*.tmp"))


def test_finished_stages_drop_their_checkpoints_unless_kept(root: Path, reference: Path) -> None:
    assert not list(reference.rglob("checkpoint.pt"))
    assert len(list(reference.glob("pretrain/*/encoders.pt"))) == 2
    cfg = cfg_of(root, "keep", "pretrain.keep_checkpoint=true", "finetune.keep_checkpoint=true")
    run_pipeline(cfg, progress=False)
    kept = root / "runs" / "keep"
    assert len(list(kept.glob("pretrain/*/checkpoint.pt"))) == 2
    assert len(list(kept.glob("finetune/*/fold*/checkpoint.pt"))) == 1
    assert_same_run(kept, reference)  # keeping changes nothing else, nor the pre-training's store key

    # a run directory written before history.json preceded encoders.pt: history recovered from the
    # checkpoint; then the checkpoint goes (keep_checkpoint may change between invocations)
    for d in kept.glob("pretrain/*"):
        (d / "history.json").unlink()
    run_pipeline(cfg_of(root, "keep"), progress=False)
    for d in kept.glob("pretrain/*"):
        assert losses(json.loads((d / "history.json").read_text())) == losses(
            json.loads((reference / "pretrain" / d.name / "history.json").read_text()))
    assert not list(kept.rglob("checkpoint.pt"))
    assert_same_run(kept, reference)


def test_next_start_removes_stale_temps_of_killed_runs_and_keeps_live_ones(root: Path, reference: Path) -> None:
    gone = dead_pid()
    cache_dir, pre = root / "cache", next(reference.glob("pretrain/*"))
    stale = {
        "cache build": cache_dir / f".deap.{tag(gone)}.c1.tmp",
        "prediction table": reference / "predictions" / f".predictions_fold0_arousal.csv.{tag(gone)}.p1.tmp",
        "checkpoint": pre / f".checkpoint.pt.{tag(gone)}.k1.tmp",
        "fold marker": reference / "finetune/arousal/fold00" / f".done.json.{tag(gone)}.d1.tmp",
        "old-style cache build": cache_dir / ".deap-q8w7e6r5.tmp",
    }
    live = {
        "concurrent cache build": cache_dir / f".deap.{atomic.owner_tag()}.c2.tmp",
        "other machine's table": reference / "predictions" / f".x.csv.{tag(gone, host='node-b')}.p2.tmp",
    }
    for what, p in {**stale, **live}.items():
        if "cache build" in what:
            p.mkdir()
            (p / "eeg.f32").write_bytes(b"\0" * 128)
        else:
            p.write_bytes(b"half-written")
    age(stale["old-style cache build"], 3 * 86400)
    before = prediction_path(reference, 0, "arousal").read_text()

    run_pipeline(cfg_of(root, "ref"), progress=False)  # the next start (everything else is finished)
    assert [w for w, p in stale.items() if p.exists()] == []
    assert [w for w, p in live.items() if not p.exists()] == []
    assert prediction_path(reference, 0, "arousal").read_text() == before
    for p in live.values():  # leave the shared cache dir as the other tests expect it
        if p.is_dir():
            for c in p.iterdir():
                c.unlink()
            p.rmdir()
        else:
            p.unlink()


def test_compare_row_is_finished_only_when_its_last_file_exists(tmp_path: Path) -> None:
    comp = SimpleNamespace(dir=tmp_path, selected=[SimpleNamespace(index=0), SimpleNamespace(index=1)],
                           cfg=SimpleNamespace(labels=["arousal"]))
    for row, marker in (("de-logreg", "results.json"), ("physiosync", "report.md")):
        d = compare.row_dir(comp, row)
        d.mkdir(parents=True)
        (d / "results.json").write_text("{}")  # a pipeline row has this after `evaluate`, before the report
        for f in comp.selected:
            p = prediction_path(d, f.index, "arousal")
            p.parent.mkdir(exist_ok=True)
            p.write_text("")
        assert compare.row_is_finished(comp, row) == (marker == "results.json")
        (d / marker).write_text("done")
        assert compare.row_is_finished(comp, row)
        prediction_path(d, 1, "arousal").unlink()
        assert not compare.row_is_finished(comp, row)
