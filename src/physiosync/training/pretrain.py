"""Contrastive pre-training of one fold at one resolution (method-spec §4.1, §4.2, §4.4, §5.1, §5.6).

What one epoch is, for the shared loop (:func:`physiosync.training.loop.run_loop`): the training moments
are shuffled into batches of B, each moment gets two subject groups drawn from the two halves of the
fold's *training* subjects (``groups``), or single windows are paired for the ``augviews`` / ``official``
modes; windows are gathered from the cache memmaps, augmented on the device (one of the six §4.4 versions
per window), run through ``PretrainModel.forward``, scored by
:func:`physiosync.losses.objective.pretrain_loss` and stepped with Adam. After every epoch the model is scored on the fold's validation moments/subjects with
groups fixed once per run (D19) and a checkpoint is written atomically; a rerun resumes from it and ends with
exactly the weights of an uninterrupted run (all generator states are restored, the epoch's order is
drawn from them). The final encoders are saved as trained (D4 fixed: no "best epoch" selection on test).

Completion: a finished pre-training writes ``history.json`` and then, *last*, ``encoders.pt`` — the file
that marks it finished (a kill before it means the run resumes from the checkpoint and writes both again;
a kill after it loses nothing). The resume checkpoint is then deleted (``pretrain.keep_checkpoint`` keeps
it): it is the size of model + Adam state and useless once the encoders exist.

Randomness: one seed per (``cfg.seed``, split key, window length) feeds the model initialisation (torch),
a NumPy generator for data order and groups, a torch generator for augmentation, and, separately, the fixed
evaluation groups — so evaluation never shifts the training stream (D18).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physiosync.atomic import write_json_atomic
from physiosync.config import FINETUNE_ONLY_MODEL_KEYS, RunConfig
from physiosync.data.batches import (
    gather_group_batch,
    gather_pairs,
    iter_tensor_batches,
    release_interval,
    release_pages,
    sample_index_batches,
)
from physiosync.errors import DataFormatError
from physiosync.training.checkpoint import load_checkpoint, save_checkpoint
from physiosync.training.loop import (
    CHECKPOINT_NAME,
    LoopSpec,
    Parts,
    Run,
    as_device,
    check_fields,
    derive_seed,
    make_adam,
    run_loop,
)
from physiosync.training.precision import Bf16Matmuls, Fp32, mixed_precision
from physiosync.training.runtime import resolve_precision

log = logging.getLogger("physiosync")

ENCODERS_NAME = "encoders.pt"  # written last: its presence marks a finished pre-training
HISTORY_NAME = "history.json"


# --------------------------------------------------------------------------------------------------
# epoch plans: index arrays only, drawn from the loop's NumPy generator


def plan_batches(
    mode: str,
    moments: np.ndarray,
    subjects: np.ndarray,
    batch_size: int,
    n_per_group: int,
    generator: np.random.Generator,
    max_batches: int | None,
) -> list[tuple[np.ndarray, ...]]:
    """Index arrays for one pass (training epoch or the fixed evaluation set).

    Args:
        mode: ``groups`` → items ``(moments (B,), idx_a (B, N), idx_b (B, N))`` with groups drawn from the
            two halves of ``subjects``; ``augviews`` → ``(subj, mom, subj, mom)`` (two views of one window);
            ``official`` → ``(subj_a, mom_a, subj_b, mom_b)`` pairing the first half of a shuffled batch
            with its second half (the authors' unrelated pairs, D2).
        moments: Stimulus moment ids available, Shape: (M,).
        subjects: Subject indices available, Shape: (S,).
        batch_size: B (moments for ``groups``, samples otherwise).
        n_per_group: N subjects per group.
        generator: Draws order and groups.
        max_batches: ``steps_per_epoch`` cap.
    """
    from physiosync.data.sampling import sample_groups, split_halves

    moments = np.asarray(moments, dtype=np.int64)
    subjects = np.asarray(subjects, dtype=np.int64)
    if mode == "groups":
        batches = sample_index_batches(moments, batch_size, generator, max_batches)
        if not batches:
            return []
        half_a, half_b = split_halves(subjects)
        sizes = [len(b) for b in batches]
        idx_a, idx_b = sample_groups(sum(sizes), half_a, half_b, n_per_group, generator)
        cuts = np.cumsum(sizes)[:-1]
        return list(zip(batches, np.split(idx_a, cuts), np.split(idx_b, cuts), strict=True))
    if mode not in ("augviews", "official"):
        raise ValueError(f"unknown pairing mode {mode!r}")
    flat = np.arange(len(subjects) * len(moments), dtype=np.int64)  # sample id = subject pos * M + moment pos
    batches = sample_index_batches(flat, batch_size, generator, max_batches)
    items = []
    for b in batches:
        s, m = subjects[b // len(moments)], moments[b % len(moments)]
        if mode == "augviews":
            items.append((s, m, s, m))
        else:
            h = len(b) // 2
            items.append((s[:h], m[:h], s[h : 2 * h], m[h : 2 * h]))
    return items


def gather_planned(cache: Any, window_s: float, item: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
    """Plan item → NumPy batch in the unified layout (B, 2, N, C, T)."""
    if len(item) == 3:
        return gather_group_batch(cache, window_s, *item)
    return gather_pairs(cache, window_s, *item)


# --------------------------------------------------------------------------------------------------


def _augment(batch: dict[str, torch.Tensor], generator: torch.Generator, cfg: RunConfig) -> dict[str, torch.Tensor]:
    from physiosync.data.augment import augment_batch

    # One call per modality with the same generator: independent draws for EEG and PPS (§4.4).
    return {m: augment_batch(x, generator, cfg.pretrain.augment) for m, x in batch.items()}


def _accumulate(sums: dict[str, Any], terms: dict[str, Any]) -> None:
    # Detached sums (no graphs kept, D25); converted with .item() once per epoch to avoid a device sync
    # per step.
    for k, v in terms.items():
        sums[k] = sums[k] + (v.detach().float() if torch.is_tensor(v) else float(v))


def _means(sums: dict[str, Any], n: int) -> dict[str, float]:
    return {k: (v.item() if torch.is_tensor(v) else float(v)) / max(n, 1) for k, v in sums.items()}


def evaluate_pretrain(
    model: torch.nn.Module,
    cache: Any,
    window_s: float,
    plan: list[tuple[np.ndarray, ...]],
    cfg: RunConfig,
    device: torch.device,
    mixed: Bf16Matmuls | Fp32 | None = None,
) -> dict[str, float]:
    """Mean loss terms (and any top-1 terms the objective returns) over a fixed evaluation plan.

    Groups and, for ``augviews``, the augmentation draws are the same every epoch (D19), so the curve
    reflects the model, not the sampling noise. Validation data are otherwise not augmented (§4.4).
    ``mixed`` is the training loop's precision context (its bf16 weight copies are current after each
    step); ``None`` makes one for ``cfg.precision``.
    """
    if not plan:
        return {}
    if mixed is None:
        mixed = mixed_precision(model, resolve_precision(cfg.precision, device))
    was_training = model.training
    model.eval()
    sums: dict[str, Any] = defaultdict(float)
    aug_gen = torch.Generator(device=device)
    aug_gen.manual_seed(derive_seed(cfg.seed, "eval-augment"))
    with torch.no_grad(), mixed:
        for batch in iter_tensor_batches(partial(gather_planned, cache, window_s), plan, device):
            if cfg.pretrain.pairing == "augviews" and cfg.pretrain.augment.enabled:
                batch = _augment(batch, aug_gen, cfg)
            _accumulate(sums, score_batch(model, batch, cfg))
    model.train(was_training)
    return _means(sums, len(plan))


def score_batch(model: torch.nn.Module, batch: dict[str, torch.Tensor], cfg: RunConfig) -> dict[str, torch.Tensor]:
    """The model's forward pass on one batch, scored by the objective: named terms and ``loss``.

    Shape:
        batch[mod]: (B, 2, N, C, T) (:mod:`physiosync.losses.objective`).
    """
    from physiosync.losses.objective import outputs_needed, pretrain_loss

    return pretrain_loss(model(batch, **outputs_needed(cfg.pretrain)), cfg.pretrain)


def _pretrain_model_view(state: dict[str, Any]) -> dict[str, Any] | None:
    """The saved model config without fine-tuning-only keys (as :meth:`ModelConfig.pretrain_view`)."""
    saved = state.get("config", {}).get("model")
    return None if saved is None else {k: v for k, v in saved.items() if k not in FINETUNE_ONLY_MODEL_KEYS}


def _check_resume(path: Path, state: dict[str, Any], cache: Any, cfg: RunConfig, key: str) -> None:
    """Refuse to continue a checkpoint made on other data or another model shape."""
    check_fields(path, (
        ("cache_hash", state.get("cache_hash"), cache.hash),
        ("split_key", state.get("split_key"), key),
        ("config.model", _pretrain_model_view(state), cfg.model.pretrain_view()),
        ("config.pretrain.pairing", state.get("config", {}).get("pretrain", {}).get("pairing"), cfg.pretrain.pairing),
    ))


def pretrain_split(
    cache: Any,
    split: Any,
    window_s: float,
    cfg: RunConfig,
    device: str | torch.device | None,
    out_dir: str | Path,
    progress: bool = True,
    max_epochs_this_call: int | None = None,
    keep_checkpoint: bool | None = None,
) -> dict[str, Any]:
    """Pre-train the encoders of one fold at one window length; resume from ``out_dir`` if possible.

    A directory whose ``encoders.pt`` exists is finished: nothing is trained, its history is read back
    (and the leftover checkpoint of a kill just before its deletion is removed). The epochs, checkpoints
    and resume are :func:`physiosync.training.loop.run_loop`'s; this function says what one epoch is.

    Args:
        cache: ``WindowCache`` (contract 2).
        split: ``PretrainSplit`` with ``train_moments``, ``val_moments``, ``train_subjects``,
            ``val_subjects`` (index arrays) and ``key()``.
        window_s: Window length in seconds (1.0 or 5.0 on DEAP).
        cfg: Resolved run config (``pretrain``, ``model``, ``seed``, ``precision``; ``auto`` is resolved
            for ``device`` here, see :func:`physiosync.training.runtime.resolve_precision`).
        device: Torch device or name; ``None`` = ``cfg.device``.
        out_dir: Where ``checkpoint.pt`` and ``encoders.pt`` go.
        progress: Show a per-epoch progress bar.
        max_epochs_this_call: Stop after this many epochs (checkpoint written) without finishing — used to
            split long runs over sessions and to test resume.
        keep_checkpoint: Keep ``checkpoint.pt`` once finished; ``None`` = ``cfg.pretrain.keep_checkpoint``.

    Returns:
        ``history`` (per epoch: ``train`` and ``val`` mean terms, ``lr``, ``steps``, ``seconds``),
        ``encoders_path`` (``None`` until finished), ``finished``, ``epochs_done``, ``skipped`` (finished
        by an earlier call).
    """
    from physiosync.models import PretrainModel

    out_dir = Path(out_dir)
    enc_path = out_dir / ENCODERS_NAME
    keep = cfg.pretrain.keep_checkpoint if keep_checkpoint is None else keep_checkpoint
    device = as_device(device, cfg.device)
    pc = cfg.pretrain
    key = str(split.key())
    base = derive_seed(cfg.seed, key, float(window_s))
    gather = partial(gather_planned, cache, window_s)

    def build() -> Parts:
        model = PretrainModel(cache.contract, window_s, cfg.model).to(device)
        optimizer = make_adam(model.parameters(), pc.lr, pc.weight_decay, device)
        data_gen = np.random.default_rng(derive_seed(base, "data"))
        aug_gen = torch.Generator(device=device)
        aug_gen.manual_seed(derive_seed(base, "augment"))
        return Parts(model, optimizer, None, {"data": data_gen}, {"augment": aug_gen})

    eval_plan = _eval_plan(split, cfg, base)  # its own generator: evaluation never shifts training (D18)

    def train_epoch(run: Run) -> dict[str, Any]:
        model, optimizer = run.parts.model, run.parts.optimizer
        aug_gen = run.parts.torch_generators["augment"]
        plan = plan_batches(pc.pairing, split.train_moments, split.train_subjects, pc.batch_size,
                            pc.n_group_subjects, run.parts.np_generators["data"], pc.steps_per_epoch)
        if not plan:
            raise ValueError(f"pre-training split {key!r} yields no training batch")
        sums: dict[str, Any] = defaultdict(float)
        every = release_interval(2 * int(np.prod(plan[0][-1].shape)))  # windows per modality per step
        for batch in iter_tensor_batches(gather, plan, device):
            if pc.augment.enabled:
                batch = _augment(batch, aug_gen, cfg)
            with run.mixed:
                terms = score_batch(model, batch, cfg)
            run.mixed.zero_grad()
            terms["loss"].backward()
            run.mixed.step()  # optimiser step; bf16 weight copies follow
            _accumulate(sums, terms)
            run.step += 1
            if run.step % every == 0:
                release_pages(cache)
        return {"steps": len(plan), "lr": optimizer.param_groups[0]["lr"], "train": _means(sums, len(plan))}

    def evaluate(run: Run) -> dict[str, float]:
        val = evaluate_pretrain(run.parts.model, cache, window_s, eval_plan, cfg, device, run.mixed)
        release_pages(cache)
        return val

    def finish(run: Run) -> dict[str, Any]:
        write_json_atomic(out_dir / HISTORY_NAME, run.history)
        save_encoders(enc_path, run.parts.model, window_s, cache, cfg, key)  # last: marks it finished
        return {"encoders_path": enc_path}

    spec = LoopSpec(
        stage="pretrain", desc=f"pretrain {window_s:g}s", epochs=pc.epochs, device=device,
        init_seed=derive_seed(base, "init"), train_seed=derive_seed(base, "train"), build=build,
        train_epoch=train_epoch, evaluate=evaluate, finish=finish, out_dir=out_dir,
        finished=lambda: _finished_earlier(out_dir) if enc_path.is_file() else None,
        check_resume=lambda path, state: _check_resume(path, state, cache, cfg, key),
        identity={"config": cfg.model_dump(mode="json"), "contract": cache.contract.to_dict(),
                  "cache_hash": cache.hash, "split_key": key, "window_s": float(window_s)},
        precision=cfg.precision,
    )
    result = run_loop(spec, progress=progress, max_epochs_this_call=max_epochs_this_call, keep_checkpoint=keep)
    return {"encoders_path": None, **result}


def _finished_earlier(out_dir: Path) -> dict[str, Any]:
    """Result of a pre-training whose ``encoders.pt`` exists (the loop then removes a leftover checkpoint).

    ``history.json`` precedes ``encoders.pt``, so it is there — except in a directory written before
    that order was fixed, where it is recovered from the checkpoint (which those runs never deleted).
    """
    ckpt_path, hist_path = out_dir / CHECKPOINT_NAME, out_dir / HISTORY_NAME
    if hist_path.is_file():
        try:
            history = json.loads(hist_path.read_text())
        except (OSError, ValueError) as e:
            raise DataFormatError(hist_path, "history", f"unreadable ({e})",
                                  "the JSON list of epochs written by physiosync") from None
    else:
        try:
            history = list(load_checkpoint(ckpt_path)["history"])
            write_json_atomic(hist_path, history)
        except (DataFormatError, KeyError, TypeError) as e:  # the encoders are fine; only a curve is lost
            log.warning("%s: no %s and no checkpoint to recover it from (%s); the report has no curve for it",
                        out_dir, HISTORY_NAME, e)
            history = []
    return {"history": history, "encoders_path": out_dir / ENCODERS_NAME, "epochs_done": len(history)}


def _eval_plan(split: Any, cfg: RunConfig, base: int) -> list[tuple[np.ndarray, ...]]:
    """Fixed monitoring batches (D19), drawn once from their own generator; empty if not possible."""
    pc = cfg.pretrain
    moments = np.asarray(getattr(split, "val_moments", []), dtype=np.int64)
    subjects = np.asarray(getattr(split, "val_subjects", []), dtype=np.int64)
    need_subjects = 2 if pc.pairing == "groups" else 1
    if len(moments) < 2 or len(subjects) < need_subjects:
        return []
    gen = np.random.default_rng(derive_seed(base, "eval"))
    return plan_batches(pc.pairing, moments, subjects, pc.batch_size, pc.n_group_subjects, gen,
                        pc.steps_per_epoch)


def save_encoders(path: Path, model: torch.nn.Module, window_s: float, cache: Any, cfg: RunConfig, key: str) -> Path:
    """Write the trained encoders of one resolution (the weights fine-tuning starts from), atomically."""
    encoders = {m: {k: v.detach().cpu() for k, v in enc.state_dict().items()} for m, enc in model.encoders.items()}
    return save_checkpoint(path, {
        "stage": "encoders", "window_s": float(window_s), "encoders": encoders,
        "contract": cache.contract.to_dict(), "cache_hash": cache.hash, "split_key": key,
        "config": cfg.model_dump(mode="json"),
    })


def load_encoder_states(paths: Iterable[str | Path]) -> dict[tuple[str, float], dict[str, torch.Tensor]]:
    """Read ``encoders.pt`` files (one per resolution) into ``{(modality, window_s): state_dict}``.

    This is the form ``FinetuneModel.load_encoders`` and :func:`physiosync.training.finetune.finetune_fold` take.
    """
    out: dict[tuple[str, float], dict[str, torch.Tensor]] = {}
    for p in paths:
        state = load_checkpoint(p)
        if state.get("stage") != "encoders":
            raise DataFormatError(p, "stage", state.get("stage"), "encoders")
        for mod, sd in state["encoders"].items():
            out[(mod, float(state["window_s"]))] = sd
    return out
