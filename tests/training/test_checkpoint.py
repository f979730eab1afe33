"""Checkpoints: round trip incl. every RNG, atomic writes, clear errors for damaged files."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from physiosync.errors import DataFormatError
from physiosync.training import checkpoint as ckpt


def _draws(np_gen: np.random.Generator, t_gen: torch.Generator) -> tuple:
    return (random.random(), np_gen.random(), torch.rand(1).item(), torch.rand(1, generator=t_gen).item())


def test_roundtrip_restores_weights_and_every_generator(tmp_path):
    model = torch.nn.Linear(3, 2)
    np_gen, t_gen = np.random.default_rng(5), torch.Generator().manual_seed(7)
    _draws(np_gen, t_gen)  # move every stream away from its seed
    path = ckpt.save_checkpoint(tmp_path / "c.pt", {
        "model": model.state_dict(), "epoch": 3, "history": [{"loss": 1.5}],
        "rng": ckpt.capture_rng_states({"data": np_gen}, {"aug": t_gen}),
    })
    expected = _draws(np_gen, t_gen)
    _draws(np_gen, t_gen)  # advance further; restoring must rewind

    state = ckpt.load_checkpoint(path)
    ckpt.restore_rng_states(state["rng"], {"data": np_gen}, {"aug": t_gen})
    assert _draws(np_gen, t_gen) == expected
    assert state["epoch"] == 3 and state["history"] == [{"loss": 1.5}]
    for k, v in model.state_dict().items():
        assert torch.equal(state["model"][k], v)


def test_failed_save_keeps_previous_file_and_leaves_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    ckpt.save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", broken_save)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(path, {"epoch": 2})
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path / "new.pt", {"epoch": 2})
    monkeypatch.undo()

    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert not (tmp_path / "new.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp files left behind


def test_truncated_checkpoint_error_names_the_file(tmp_path):
    path = tmp_path / "c.pt"
    ckpt.save_checkpoint(path, {"model": torch.nn.Linear(8, 8).state_dict()})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="c.pt"):
        ckpt.load_checkpoint(path)
    with pytest.raises(DataFormatError, match="missing.pt"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")


def test_foreign_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "obj": object()}, path)  # arbitrary objects need the unsafe unpickler
    with pytest.raises(DataFormatError, match="evil.pt"):
        ckpt.load_checkpoint(path)
