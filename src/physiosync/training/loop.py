"""The one resumable epoch loop: pre-training, fine-tuning and EEGNet all train through :func:`run_loop`.

A user describes one run with a :class:`LoopSpec` — how to build what is trained (under the init seed),
what one epoch trains, how it is evaluated, what is written when it is finished — and the loop does the
rest, the same way for all of them:

1. a finished run (its completion marker exists, ``spec.finished``) returns at once, without building;
2. ``torch.manual_seed(init_seed)``, ``spec.build()``, then ``torch.manual_seed(train_seed)`` (the dropout
   stream, independent of the init draws) — the random-number order every user had before this loop;
3. resume: the last ``checkpoint.pt`` restores weights, optimiser, scheduler, history, step counter and
   every generator (:mod:`physiosync.training.checkpoint`), after the spec's identity check;
4. precision: ``spec.precision`` resolved, or the resumed checkpoint's (:func:`run_precision`); the
   step functions run their forward passes ``with run.mixed`` (:mod:`physiosync.training.precision`);
5. per epoch: ``model.train()``, ``spec.train_epoch``, scheduler step, ``spec.evaluate``, one history
   record, an atomic checkpoint (so a kill loses at most the epoch in progress);
6. once ``epochs`` are done: ``spec.finish`` writes the outputs with the completion marker LAST, then the
   checkpoint is deleted unless ``keep_checkpoint`` (a kill before the marker redoes the finish from the
   last checkpoint; a kill after it loses nothing).

``max_epochs_this_call`` stops early with the checkpoint written (split long runs over sessions; tests of
resume). A resumed run ends with exactly the weights and history of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from physiosync.errors import DataFormatError
from physiosync.training.checkpoint import (
    capture_rng_states,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from physiosync.training.precision import Bf16Matmuls, Fp32, mixed_precision
from physiosync.training.runtime import resolve_device, resolve_precision

CHECKPOINT_NAME = "checkpoint.pt"


def derive_seed(*parts: object) -> int:
    """Stable 63-bit seed from any printable parts (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def as_device(device: str | torch.device | None, default: str) -> torch.device:
    """``None`` → ``default`` (a config's ``device``) resolved: auto = CUDA, then MPS, then CPU."""
    if device is None:
        return resolve_device(default)
    return device if isinstance(device, torch.device) else resolve_device(str(device))


def make_adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float, device: torch.device):
    """Adam with the fused kernel on CPU and CUDA, foreach elsewhere.

    Why: at the paper's batch of 8 moments the optimiser step is a large share of a pre-training step
    (26 M parameters); the fused kernel measured ~2x faster per step than foreach on our 2-core CPU
    (benchmarks/bench_model.py --optim).
    """
    kwargs: dict[str, Any] = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, **kwargs)


def run_precision(requested: str, device: torch.device, state: dict[str, Any] | None, path: Path | None) -> str:
    """The precision a run trains in: ``requested`` resolved, or a resumed checkpoint's.

    ``auto`` continues a checkpoint in the precision it was made with (one arithmetic per trained model,
    whatever machine resumes it); an explicit precision that differs from the checkpoint's is refused.
    """
    chosen = resolve_precision(requested, device)
    saved = (state or {}).get("precision")
    if saved is None:
        return chosen
    if requested == "auto":
        return str(saved)
    if saved != chosen:
        raise DataFormatError(path, "precision", saved, f"{chosen} (delete the checkpoint to start over)")
    return chosen


def check_fields(path: Path, fields: Iterable[tuple[str, Any, Any]]) -> None:
    """Refuse to resume a checkpoint whose ``(field, found, expected)`` differ (other data, other model)."""
    for name, found, expected in fields:
        if found != expected:
            raise DataFormatError(path, name, found, f"{expected} (delete the checkpoint to start over)")


@dataclass
class Parts:
    """The stateful things one run trains and checkpoints; ``LoopSpec.build`` makes them under the init seed."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None = None  # stepped once per epoch, after training
    np_generators: dict[str, np.random.Generator] = field(default_factory=dict)
    torch_generators: dict[str, torch.Generator] = field(default_factory=dict)


@dataclass
class Run:
    """What the step functions see: the built parts, the precision context, counters and the history."""

    parts: Parts
    device: torch.device
    precision: str
    mixed: Bf16Matmuls | Fp32
    step: int = 0  # optimiser steps so far (a step function increments it)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LoopSpec:
    """One resumable training run (module docstring: the order in which the loop calls these).

    Attributes:
        stage: Checkpoint ``stage`` field (``pretrain``, ``finetune``, ``eegnet``).
        desc: Progress-bar label.
        epochs: Epochs of a finished run.
        device: Where the model trains.
        init_seed: Global torch seed before ``build`` (weight initialisation).
        build: Makes the :class:`Parts`.
        train_epoch: Trains one epoch; returns the record's fields after ``epoch`` (at least ``train``,
            a dict of mean terms with ``loss``).
        finish: Writes the outputs of a finished run, its completion marker LAST; returns result fields.
        train_seed: Global torch seed after ``build`` (dropout stream); ``None`` = continue the init stream.
        evaluate: The record's ``val`` (monitoring only); ``None`` = no ``val`` field.
        out_dir: Where ``checkpoint.pt`` goes; ``None`` = no checkpoint (nothing to resume).
        finished: Result fields of a run an earlier call finished (its marker exists), else ``None``.
        check_resume: Raises when a checkpoint does not belong to this run (see :func:`check_fields`).
        identity: Stored in every checkpoint (what ``check_resume`` compares, plus self-description).
        precision: Requested precision (``auto``, ``fp32``, ``bf16``).
        isolate_rng: Restore the caller's global torch CPU generator afterwards (a library call that must
            not shift its caller's random stream).
    """

    stage: str
    desc: str
    epochs: int
    device: torch.device
    init_seed: int
    build: Callable[[], Parts]
    train_epoch: Callable[[Run], dict[str, Any]]
    finish: Callable[[Run], dict[str, Any]]
    train_seed: int | None = None
    evaluate: Callable[[Run], dict[str, Any]] | None = None
    out_dir: Path | None = None
    finished: Callable[[], dict[str, Any] | None] | None = None
    check_resume: Callable[[Path, dict[str, Any]], None] | None = None
    identity: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    isolate_rng: bool = False


def run_loop(
    spec: LoopSpec, progress: bool = True, max_epochs_this_call: int | None = None, keep_checkpoint: bool = False
) -> dict[str, Any]:
    """Train ``spec`` to ``spec.epochs`` (or ``max_epochs_this_call`` more epochs), resuming if possible.

    Returns:
        ``history`` (one record per epoch: ``epoch``, the ``train_epoch`` fields, ``val``, ``seconds``),
        ``finished``, ``skipped`` (finished by an earlier call), ``epochs_done``, plus the fields of
        ``spec.finish`` / ``spec.finished`` once finished.
    """
    ckpt = None if spec.out_dir is None else Path(spec.out_dir) / CHECKPOINT_NAME
    isolate = torch.random.fork_rng(devices=[]) if spec.isolate_rng else contextlib.nullcontext()
    with isolate:
        done = spec.finished() if spec.finished is not None else None
        if done is not None:
            if ckpt is not None and not keep_checkpoint:
                ckpt.unlink(missing_ok=True)  # left by a kill between the marker and the deletion
            return {"history": [], "epochs_done": len(done.get("history", [])), **done,
                    "finished": True, "skipped": True}

        torch.manual_seed(spec.init_seed)
        parts = spec.build()
        if spec.train_seed is not None:
            torch.manual_seed(spec.train_seed)
        state: dict[str, Any] | None = None
        history: list[dict[str, Any]] = []
        start, step = 0, 0
        if ckpt is not None and ckpt.exists():
            state = load_checkpoint(ckpt, map_location=spec.device)
            if spec.check_resume is not None:
                spec.check_resume(ckpt, state)
            parts.model.load_state_dict(state["model"])
            parts.optimizer.load_state_dict(state["optimizer"])
            if parts.scheduler is not None:
                parts.scheduler.load_state_dict(state["scheduler"])
            restore_rng_states(state["rng"], parts.np_generators, parts.torch_generators)
            history, start, step = list(state["history"]), int(state["epoch"]), int(state.get("step") or 0)
        # bf16: weight copies made after the (possibly resumed) weights are in place; step functions call
        # run.mixed.zero_grad() / run.mixed.step() (optimiser step, copies follow); fp32: plain optimiser calls.
        precision = run_precision(spec.precision, spec.device, state, ckpt)
        run = Run(parts, spec.device, precision, mixed_precision(parts.model, precision, parts.optimizer), step, history)

        stop = spec.epochs if max_epochs_this_call is None else min(spec.epochs, start + max_epochs_this_call)
        bar = tqdm(range(start, stop), disable=not progress, desc=spec.desc, unit="epoch")
        for epoch in bar:
            tic = time.perf_counter()
            parts.model.train()
            record = {"epoch": epoch + 1, **spec.train_epoch(run)}
            if parts.scheduler is not None:
                parts.scheduler.step()
            if spec.evaluate is not None:
                record["val"] = spec.evaluate(run)
            record["seconds"] = time.perf_counter() - tic
            history.append(record)
            bar.set_postfix(loss=f"{record['train'].get('loss', float('nan')):.3f}")
            if ckpt is not None:
                save_checkpoint(ckpt, {
                    "stage": spec.stage, "model": parts.model.state_dict(),
                    "optimizer": parts.optimizer.state_dict(),
                    "scheduler": None if parts.scheduler is None else parts.scheduler.state_dict(),
                    "epoch": epoch + 1, "step": run.step,
                    "rng": capture_rng_states(parts.np_generators, parts.torch_generators),
                    **spec.identity, "history": history, "precision": precision,
                })

        finished = (history[-1]["epoch"] if history else 0) >= spec.epochs
        result: dict[str, Any] = {"history": history, "finished": finished, "skipped": False,
                                  "epochs_done": len(history)}
        if finished:
            result.update(spec.finish(run))  # the completion marker is the last file it writes
            if ckpt is not None and not keep_checkpoint:
                ckpt.unlink(missing_ok=True)
    return result
