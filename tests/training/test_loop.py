"""The one training loop: exact resume, completion marker last, keep_checkpoint, seeds — for a toy run and
for each of its three users (pre-training, fine-tuning, EEGNet)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from builders import SPLIT, make_cache, make_fold, tiny_cfg
from torch import nn

import physiosync.baselines.eegnet as eegnet_mod
from physiosync.baselines.eegnet import predict_proba, train_eegnet
from physiosync.errors import DataFormatError
from physiosync.training.checkpoint import load_checkpoint
from physiosync.training.finetune import finetune_fold
from physiosync.training.loop import CHECKPOINT_NAME, LoopSpec, Parts, Run, check_fields, run_loop
from physiosync.training.pretrain import pretrain_split

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: why one thread


class Killed(Exception):
    """Stands for the SIGKILL that interrupts a run at a chosen write."""


def records(history: list[dict]) -> list[dict]:
    """History without wall-clock fields (everything else must be bit-identical)."""
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# --------------------------------------------------------------------------------------------------
# a toy run: every kind of randomness a real user has (init, dropout, NumPy order, a torch generator)

X = torch.from_numpy(np.random.default_rng(0).standard_normal((24, 5))).float()
Y = (X[:, 0] > 0).long()


class Toy:
    """A LoopSpec factory that counts epochs trained and writes ``out.json`` then the ``done.json`` marker."""

    def __init__(self, out_dir: Path | None, seed: int = 0, epochs: int = 4, kill_marker: bool = False) -> None:
        self.out_dir, self.seed, self.epochs, self.kill_marker = out_dir, seed, epochs, kill_marker
        self.trained = 0

    def build(self) -> Parts:
        model = nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.3), nn.Linear(8, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        return Parts(model, opt, sched, {"order": np.random.default_rng(self.seed)},
                     {"noise": torch.Generator().manual_seed(self.seed + 1)})

    def train_epoch(self, run: Run) -> dict[str, Any]:
        self.trained += 1
        order = run.parts.np_generators["order"].permutation(len(X))
        total = 0.0
        for rows in np.array_split(order, 3):
            x = X[rows] + 0.1 * torch.randn(len(rows), 5, generator=run.parts.torch_generators["noise"])
            loss = nn.functional.cross_entropy(run.parts.model(x), Y[rows])
            run.parts.optimizer.zero_grad()
            loss.backward()
            run.parts.optimizer.step()
            run.step += 1
            total += loss.item()
        return {"lr": run.parts.scheduler.get_last_lr()[0], "train": {"loss": total / 3}}

    def evaluate(self, run: Run) -> dict[str, float]:
        run.parts.model.eval()
        with torch.no_grad():
            return {"loss": nn.functional.cross_entropy(run.parts.model(X), Y).item()}

    def weights(self, run: Run) -> dict[str, list]:
        return {k: v.tolist() for k, v in run.parts.model.state_dict().items()}

    def finish(self, run: Run) -> dict[str, Any]:
        out = {"weights": self.weights(run), "history": records(run.history)}
        if self.out_dir is not None:
            (self.out_dir / "out.json").write_text(json.dumps(out))
            if self.kill_marker:
                raise Killed("before done.json")
            (self.out_dir / "done.json").write_text("{}")  # the marker, last
        return out

    def finished(self) -> dict[str, Any] | None:
        if self.out_dir is None or not (self.out_dir / "done.json").is_file():
            return None
        return json.loads((self.out_dir / "out.json").read_text())

    def spec(self) -> LoopSpec:
        return LoopSpec(stage="toy", desc="toy", epochs=self.epochs, device=torch.device("cpu"),
                        init_seed=self.seed, train_seed=self.seed + 100, build=self.build,
                        train_epoch=self.train_epoch, evaluate=self.evaluate, finish=self.finish,
                        out_dir=self.out_dir, finished=self.finished, identity={"toy": self.seed},
                        check_resume=lambda p, s: check_fields(p, [("toy", s.get("toy"), self.seed)]))


def test_toy_resume_after_interruptions_equals_uninterrupted(tmp_path: Path) -> None:
    full = run_loop(Toy(None).spec(), progress=False)
    assert full["finished"] and not full["skipped"] and full["epochs_done"] == 4
    cut = tmp_path / "cut"
    cut.mkdir()
    for n_more, n_done in ((1, 1), (2, 3)):  # stop after epoch 1, then after epoch 3 (mid scheduler period)
        part = run_loop(Toy(cut).spec(), progress=False, max_epochs_this_call=n_more)
        assert not part["finished"] and part["epochs_done"] == n_done and "weights" not in part
        assert load_checkpoint(cut / CHECKPOINT_NAME)["epoch"] == n_done
    toy = Toy(cut)
    resumed = run_loop(toy.spec(), progress=False)
    assert toy.trained == 1 and resumed["finished"]
    assert resumed["weights"] == full["weights"]  # bit-identical floats (lists of Python floats)
    assert records(resumed["history"]) == records(full["history"])
    assert [h["lr"] for h in full["history"]] == [0.1, 0.1, 0.05, 0.05]
    assert not (cut / CHECKPOINT_NAME).exists()  # finished: checkpoint dropped (keep_checkpoint=False)


def test_toy_seed_sensitivity() -> None:
    a, b, c = (run_loop(Toy(None, seed=s).spec(), progress=False) for s in (0, 0, 1))
    assert a["weights"] == b["weights"] and records(a["history"]) == records(b["history"])
    assert a["weights"] != c["weights"] and records(a["history"]) != records(c["history"])


def test_toy_crash_between_last_checkpoint_and_marker_redoes_the_finish(tmp_path: Path) -> None:
    reference = run_loop(Toy(None).spec(), progress=False)
    with pytest.raises(Killed):
        run_loop(Toy(tmp_path, kill_marker=True).spec(), progress=False)
    # every epoch was trained and checkpointed, the outputs written, but the marker is missing
    assert (tmp_path / "out.json").exists() and not (tmp_path / "done.json").exists()
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 4
    toy = Toy(tmp_path)
    again = run_loop(toy.spec(), progress=False)
    assert toy.trained == 0 and again["finished"] and not again["skipped"]  # finish redone from the checkpoint
    assert again["weights"] == reference["weights"]
    assert (tmp_path / "done.json").exists() and not (tmp_path / CHECKPOINT_NAME).exists()
    toy = Toy(tmp_path)
    skipped = run_loop(toy.spec(), progress=False)
    assert skipped["skipped"] and toy.trained == 0 and skipped["weights"] == reference["weights"]


def test_toy_keep_checkpoint_and_later_deletion(tmp_path: Path) -> None:
    run_loop(Toy(tmp_path).spec(), progress=False, keep_checkpoint=True)
    assert (tmp_path / "done.json").exists() and load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 4
    # keep_checkpoint is a runtime choice: a later call without it tidies the finished directory
    assert run_loop(Toy(tmp_path).spec(), progress=False, keep_checkpoint=True)["skipped"]
    assert (tmp_path / CHECKPOINT_NAME).exists()
    assert run_loop(Toy(tmp_path).spec(), progress=False)["skipped"]
    assert not (tmp_path / CHECKPOINT_NAME).exists()


def test_toy_refuses_a_checkpoint_of_another_run(tmp_path: Path) -> None:
    run_loop(Toy(tmp_path, seed=0).spec(), progress=False, max_epochs_this_call=1)
    with pytest.raises(DataFormatError, match="toy"):
        run_loop(Toy(tmp_path, seed=5).spec(), progress=False)


def test_isolate_rng_leaves_the_callers_stream_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    spec = Toy(None).spec()
    spec.isolate_rng = True
    run_loop(spec, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    run_loop(Toy(None).spec(), progress=False)  # the default: seeds are set and left (pipeline stages reseed)
    assert not torch.equal(torch.get_rng_state(), before)


# --------------------------------------------------------------------------------------------------
# the three users: interrupted twice, resumed, equal to one uninterrupted call


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return make_cache(tmp_path_factory.mktemp("cache"))


def eeg_data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.standard_normal((n, 4, 64)).astype(np.float32)
    x[y == 1, :2] += np.sin(2 * np.pi * 8 * np.arange(64) / 64.0).astype(np.float32)
    return x, y


def run_user(user: str, cache: Any, out: Path | None, seed: int = 0, **kw: Any) -> dict[str, Any]:
    """One call of a loop user, reduced to (history, trained weights/predictions, finished)."""
    if user == "pretrain":
        res = pretrain_split(cache, SPLIT, 1.0, tiny_cfg(seed, epochs=3), "cpu", out, progress=False, **kw)
        weights = load_checkpoint(res["encoders_path"])["encoders"] if res["finished"] else None
        return {"history": res["history"], "weights": weights, "finished": res["finished"]}
    if user == "finetune":
        res = finetune_fold(cache, cache.windows(5.0), make_fold(cache), "arousal", None, tiny_cfg(seed), "cpu",
                            out, progress=False, **kw)
        return {"history": res["history"], "weights": res.get("proba"), "finished": res["finished"]}
    x, y = eeg_data()
    model = train_eegnet(x, y, epochs=3, batch_size=16, lr=5e-3, seed=seed, out_dir=out, **kw)
    return {"history": [{"train": {"loss": v}} for v in model.train_losses], "finished": model.finished,
            "weights": {"model": model.state_dict(), "proba": predict_proba(model, x)} if model.finished else None}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if torch.is_tensor(a):
        return torch.equal(a, b)
    return bool(np.array_equal(a, b))


USERS = ["pretrain", "finetune", "eegnet"]


@pytest.mark.parametrize("user", USERS)
def test_resume_after_interruption_equals_uninterrupted(cache, tmp_path: Path, user: str) -> None:
    full = run_user(user, cache, tmp_path / "full")
    assert full["finished"] and len(full["history"]) == 3
    for _ in range(2):
        assert not run_user(user, cache, tmp_path / "cut", max_epochs_this_call=1)["finished"]
    assert load_checkpoint(tmp_path / "cut" / CHECKPOINT_NAME)["epoch"] == 2
    resumed = run_user(user, cache, tmp_path / "cut")
    assert resumed["finished"] and same(resumed["weights"], full["weights"])
    assert records(resumed["history"]) == records(full["history"])
    assert not (tmp_path / "cut" / CHECKPOINT_NAME).exists()


@pytest.mark.parametrize("user", USERS)
def test_seed_sensitivity_of_each_user(cache, tmp_path: Path, user: str) -> None:
    a, b, c = (run_user(user, cache, tmp_path / d, seed=s) for d, s in (("a", 0), ("b", 0), ("c", 1)))
    assert same(a["weights"], b["weights"]) and not same(a["weights"], c["weights"])


def test_eegnet_checkpointing_changes_no_number_and_keeps_the_callers_rng(tmp_path: Path) -> None:
    x, y = eeg_data()
    torch.manual_seed(7)
    before = torch.get_rng_state()
    in_memory = train_eegnet(x, y, epochs=3, batch_size=16, lr=5e-3, seed=2)
    on_disk = train_eegnet(x, y, epochs=3, batch_size=16, lr=5e-3, seed=2, out_dir=tmp_path)
    assert torch.equal(torch.get_rng_state(), before)
    assert same(in_memory.state_dict(), on_disk.state_dict()) and in_memory.train_losses == on_disk.train_losses
    assert not on_disk.training and on_disk.finished


def test_eegnet_marker_last_and_finished_directory_is_loaded(tmp_path: Path, monkeypatch) -> None:
    x, y = eeg_data()
    reference = train_eegnet(x, y, epochs=3, batch_size=16, lr=5e-3, seed=0)
    real_save = eegnet_mod.save_checkpoint

    def killed_at_marker(path, state):
        if Path(path).name == eegnet_mod.MODEL_NAME:
            raise Killed("eegnet.pt")
        return real_save(path, state)

    monkeypatch.setattr(eegnet_mod, "save_checkpoint", killed_at_marker)
    with pytest.raises(Killed):
        train_eegnet(x, y, epochs=3, batch_size=16, lr=5e-3, seed=0, out_dir=tmp_path)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 3 and not (tmp_path / "eegnet.pt").exists()

    redone = train_eegnet(x, y, epochs=3, batch_size=16, lr=5e-3, seed=0, out_dir=tmp_path, keep_checkpoint=True)
    assert same(redone.state_dict(), reference.state_dict()) and redone.train_losses == reference.train_losses
    assert (tmp_path / "eegnet.pt").exists() and (tmp_path / CHECKPOINT_NAME).exists()  # kept

    def no_training(*a, **k):
        raise AssertionError("a finished EEGNet directory must not be trained again")

    monkeypatch.setattr(eegnet_mod, "_to_tensor", no_training)
    loaded = train_eegnet(x, y, epochs=3, batch_size=16, lr=5e-3, seed=0, out_dir=tmp_path)
    monkeypatch.undo()
    assert same(loaded.state_dict(), reference.state_dict()) and loaded.train_losses == reference.train_losses
    np.testing.assert_array_equal(predict_proba(loaded, x), predict_proba(reference, x))
    assert not (tmp_path / CHECKPOINT_NAME).exists()  # keep_checkpoint=False on the later call tidies it
    with pytest.raises(DataFormatError, match="eegnet"):  # other settings never reuse the directory
        train_eegnet(x, y, epochs=3, batch_size=16, lr=1e-3, seed=0, out_dir=tmp_path)
