"""Supervised fine-tuning of one fold and one label, then prediction of its test rows (method-spec §5.1).

All encoders are trainable and start from the pre-trained states when given (random init otherwise: the
"no pre-training" ablation); the fusion classifier is trained with them. Adam (lr ``cfg.finetune.lr``, no
weight decay by default), cosine warm restarts with T₀ = ``cfg.finetune.t0`` or ``max(1, epochs // 3)``,
η_min = 0, stepped once per epoch; batches of 256 shuffled training rows; cross-entropy. Each epoch is
monitored on the fold's *validation* rows only — the test rows are touched once, after the last epoch
(D26: no test-set epoch picking). The last-epoch model predicts the test rows in order.

A checkpoint is written atomically after every epoch and a rerun resumes from it; a finished fold leaves
``predictions.npz`` and then, last, a ``done.json`` marker, and is skipped on the next run. The checkpoint
is deleted once the marker exists (``finetune.keep_checkpoint`` keeps it): ``evaluate`` and ``report``
read only the predictions and the marker's history.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from physiosync.atomic import atomic_path, write_text_atomic
from physiosync.config import RunConfig
from physiosync.data.batches import (
    gather_rows,
    iter_tensor_batches,
    release_interval,
    release_pages,
    sample_index_batches,
)
from physiosync.data.table import WindowTable
from physiosync.errors import DataFormatError
from physiosync.training.checkpoint import (
    capture_rng_states,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
)
from physiosync.training.precision import Bf16Matmuls, Fp32, mixed_precision
from physiosync.training.pretrain import as_device, derive_seed, make_adam, run_precision
from physiosync.training.runtime import resolve_precision

CHECKPOINT_NAME = "checkpoint.pt"
PREDICTIONS_NAME = "predictions.npz"
DONE_NAME = "done.json"


def _rows_gather(cache: Any, table: WindowTable, rows: np.ndarray) -> dict[str, np.ndarray]:
    return gather_rows(cache, table.window_s, table, rows)


@torch.no_grad()
def predict_rows(
    model: torch.nn.Module, cache: Any, table: WindowTable, rows: np.ndarray, cfg: RunConfig,
    device: torch.device, batch_size: int, mixed: Bf16Matmuls | Fp32 | None = None,
) -> np.ndarray:
    """Class probabilities for ``rows`` in their given order (eval mode, no shuffling).

    ``mixed``: the training loop's precision context (``None`` = a new one for ``cfg.precision``).

    Shape:
        rows: (n,) row indices into ``table``.

    Returns:
        Shape: (len(rows), n_classes), float64.
    """
    model.eval()
    if mixed is None:
        mixed = mixed_precision(model, resolve_precision(cfg.precision, device))
    rows = np.asarray(rows, dtype=np.int64)
    plan = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]  # every row, in order
    out = []
    for batch in iter_tensor_batches(partial(_rows_gather, cache, table), plan, device):
        with mixed:
            logits = model(batch)
        out.append(torch.softmax(logits.float(), dim=1))  # stays on the device until the end (no sync)
    return torch.cat(out).cpu().numpy().astype(np.float64) if out else np.zeros((0, 0))


def _evaluate(model, cache, table, rows, labels, cfg, device, batch_size, mixed=None) -> dict[str, float]:
    if len(rows) == 0:
        return {}
    proba = predict_rows(model, cache, table, rows, cfg, device, batch_size, mixed)
    y = labels[rows]
    nll = -np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, None))
    return {"loss": float(nll.mean()), "accuracy": float((proba.argmax(1) == y).mean())}


def finetune_fold(
    cache: Any,
    table: WindowTable,
    fold: Any,
    label_name: str,
    encoder_states: dict[tuple[str, float], dict[str, torch.Tensor]] | None,
    cfg: RunConfig,
    device: str | torch.device | None,
    out_dir: str | Path,
    progress: bool = True,
    max_epochs_this_call: int | None = None,
    keep_checkpoint: bool | None = None,
) -> dict[str, Any]:
    """Fine-tune on ``fold.train`` rows, monitor on ``fold.val``, predict ``fold.test``.

    Args:
        cache: ``WindowCache``.
        table: The longest-window ``WindowTable`` the fold's row indices refer to.
        fold: ``Fold`` with ``index``, ``train``, ``val``, ``test`` row-index arrays.
        label_name: ``arousal``, ``valence`` or ``four``.
        encoder_states: ``{(modality, window_s): state_dict}`` from pre-training, or ``None`` (random init).
        cfg: Resolved run config (``finetune``, ``model``, ``seed``, ``precision``).
        device: Torch device or name; ``None`` = ``cfg.device``.
        out_dir: Directory for ``checkpoint.pt``, ``predictions.npz``, ``done.json``.
        progress: Show a per-epoch progress bar.
        max_epochs_this_call: Stop after this many epochs without predicting (resume test / sessions).
        keep_checkpoint: Keep ``checkpoint.pt`` (weights + optimiser) after the fold is done; ``None`` =
            ``cfg.finetune.keep_checkpoint``.

    Returns:
        ``y_true``, ``y_pred`` (n,), ``proba`` (n, K), ``rows`` (n,) test row indices, ``history``,
        ``finished``, ``skipped`` (true when an earlier run had finished this fold).
    """
    from physiosync.models import FinetuneModel

    device = as_device(device, cfg)
    out_dir = Path(out_dir)
    ckpt_path, pred_path, done_path = out_dir / CHECKPOINT_NAME, out_dir / PREDICTIONS_NAME, out_dir / DONE_NAME
    keep = cfg.finetune.keep_checkpoint if keep_checkpoint is None else keep_checkpoint
    if done_path.is_file() and pred_path.is_file():
        if not keep:
            ckpt_path.unlink(missing_ok=True)  # left by a kill between the marker and the deletion
        return {**load_predictions(pred_path), "history": json.loads(done_path.read_text())["history"],
                "finished": True, "skipped": True}

    fc = cfg.finetune
    train_rows = np.asarray(fold.train, dtype=np.int64)
    val_rows = np.asarray(getattr(fold, "val", []), dtype=np.int64)
    test_rows = np.asarray(fold.test, dtype=np.int64)
    overlap = np.intersect1d(train_rows, test_rows)
    if overlap.size or np.intersect1d(val_rows, test_rows).size:
        raise ValueError(f"fold {fold.index}: test rows also in train/val (e.g. {overlap[:5].tolist()})")
    labels = table.label(label_name)
    n_classes = cache.task(label_name).n_classes
    base = derive_seed(cfg.seed, "finetune", int(fold.index), label_name)

    torch.manual_seed(derive_seed(base, "init"))
    model = FinetuneModel(cache.contract, cfg.model, n_classes)
    if encoder_states:
        model.load_encoders(encoder_states)
    model.to(device)
    optimizer = make_adam(model.parameters(), fc.lr, fc.weight_decay, device)
    t0 = fc.t0 if fc.t0 is not None else max(1, fc.epochs // 3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=t0, eta_min=0.0)
    data_gen = np.random.default_rng(derive_seed(base, "data"))
    torch.manual_seed(derive_seed(base, "train"))

    history: list[dict[str, Any]] = []
    start_epoch = 0
    state: dict[str, Any] | None = None
    if ckpt_path.exists():
        state = load_checkpoint(ckpt_path, map_location=device)
        for field, found, expected in (("cache_hash", state.get("cache_hash"), cache.hash),
                                       ("label", state.get("label"), label_name),
                                       ("fold", state.get("fold"), int(fold.index))):
            if found != expected:
                raise DataFormatError(ckpt_path, field, found, f"{expected} (delete the checkpoint to start over)")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng_states(state["rng"], {"data": data_gen})
        history, start_epoch = list(state["history"]), int(state["epoch"])
    # after any resumed weights; a resumed fold keeps its checkpoint's precision (pretrain.run_precision)
    precision = run_precision(cfg, device, state, ckpt_path)
    mixed = mixed_precision(model, precision)

    y_train = torch.from_numpy(labels).long().to(device)  # once; per step only the row indices move
    gather = partial(_rows_gather, cache, table)
    stop = fc.epochs if max_epochs_this_call is None else min(fc.epochs, start_epoch + max_epochs_this_call)
    bar = tqdm(range(start_epoch, stop), disable=not progress, desc=f"finetune fold {fold.index} {label_name}",
               unit="epoch")
    for epoch in bar:
        tic = time.perf_counter()
        model.train()
        plan = sample_index_batches(train_rows, fc.batch_size, data_gen, fc.steps_per_epoch, drop_last=False)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        n_seen = 0
        lr = scheduler.get_last_lr()[0]
        every = release_interval(fc.batch_size)
        for i, (rows, batch) in enumerate(zip(plan, iter_tensor_batches(gather, plan, device), strict=True)):
            y = y_train[torch.from_numpy(rows).to(device, non_blocking=True)]
            with mixed:
                logits = model(batch)
            loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            mixed.refresh()
            loss_sum += loss.detach() * len(rows)
            correct += (logits.detach().argmax(1) == y).sum()
            n_seen += len(rows)
            if (i + 1) % every == 0:
                release_pages(cache)
        scheduler.step()
        record = {
            "epoch": epoch + 1, "lr": lr, "steps": len(plan),
            "train": {"loss": loss_sum.item() / max(n_seen, 1), "accuracy": correct.item() / max(n_seen, 1)},
            "val": _evaluate(model, cache, table, val_rows, labels, cfg, device, fc.batch_size, mixed),
        }
        release_pages(cache)
        record["seconds"] = time.perf_counter() - tic
        history.append(record)
        bar.set_postfix(loss=f"{record['train']['loss']:.3f}")
        save_checkpoint(ckpt_path, {
            "stage": "finetune", "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "step": None,
            "rng": capture_rng_states({"data": data_gen}), "config": cfg.model_dump(mode="json"),
            "contract": cache.contract.to_dict(), "cache_hash": cache.hash, "label": label_name,
            "fold": int(fold.index), "history": history, "precision": precision,
        })

    if (history[-1]["epoch"] if history else 0) < fc.epochs:
        return {"history": history, "finished": False, "skipped": False}

    proba = predict_rows(model, cache, table, test_rows, cfg, device, fc.batch_size, mixed)
    result = {"rows": test_rows, "y_true": labels[test_rows].astype(np.int64),
              "y_pred": proba.argmax(1).astype(np.int64), "proba": proba}
    save_predictions(pred_path, result)
    write_text_atomic(done_path, json.dumps({"fold": int(fold.index), "label": label_name,  # last: the marker
                                             "n_test": int(len(test_rows)), "history": history}, indent=1))
    if not keep:
        ckpt_path.unlink(missing_ok=True)
    return {**result, "history": history, "finished": True, "skipped": False}


def save_predictions(path: str | Path, result: dict[str, np.ndarray]) -> None:
    """Write ``rows``, ``y_true``, ``y_pred``, ``proba`` atomically as one ``.npz``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **{k: result[k] for k in ("rows", "y_true", "y_pred", "proba")})


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """Read a ``predictions.npz`` written by :func:`save_predictions` (no pickles allowed)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in ("rows", "y_true", "y_pred", "proba")}
    except (OSError, KeyError, ValueError) as e:
        raise DataFormatError(path, "predictions", f"unreadable ({e})", "rows, y_true, y_pred, proba arrays") from None
