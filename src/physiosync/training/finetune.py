"""Supervised fine-tuning of one fold and one label, then prediction of its test rows (method-spec §5.1).

All encoders are trainable and start from the pre-trained states when given (random init otherwise: the
"no pre-training" ablation); the fusion classifier is trained with them. Adam (lr ``cfg.finetune.lr``, no
weight decay by default), cosine warm restarts with T₀ = ``cfg.finetune.t0`` or ``max(1, epochs // 3)``,
η_min = 0, stepped once per epoch; batches of 256 shuffled training rows; cross-entropy. Each epoch is
monitored on the fold's *validation* rows only — the test rows are touched once, after the last epoch
(D26: no test-set epoch picking). The last-epoch model predicts the test rows in order.

The epochs, checkpoints and resume are the shared loop's (:func:`physiosync.training.loop.run_loop`): a
checkpoint is written atomically after every epoch and a rerun resumes from it; a finished fold leaves
``predictions.npz`` and then, last, a ``done.json`` marker, and is skipped on the next run. The checkpoint
is deleted once the marker exists (``finetune.keep_checkpoint`` keeps it): ``evaluate`` and ``report``
read only the predictions and the marker's history.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

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
from physiosync.training.checkpoint import save_checkpoint
from physiosync.training.loop import (
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
    model_path: str | Path | None = None,
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
        model_path: Also save the trained model's weights there (before the predictions and the marker):
            ``physiosync fit`` bundles them (its one "fold" has every row in ``train`` and no test rows).

    Returns:
        ``y_true``, ``y_pred`` (n,), ``proba`` (n, K), ``rows`` (n,) test row indices, ``history``,
        ``finished``, ``skipped`` (true when an earlier run had finished this fold).
    """
    from physiosync.models import FinetuneModel

    device = as_device(device, cfg.device)
    out_dir = Path(out_dir)
    pred_path, done_path = out_dir / PREDICTIONS_NAME, out_dir / DONE_NAME
    keep = cfg.finetune.keep_checkpoint if keep_checkpoint is None else keep_checkpoint

    def finished() -> dict[str, Any] | None:
        if not (done_path.is_file() and pred_path.is_file()):
            return None
        return {**load_predictions(pred_path), "history": json.loads(done_path.read_text())["history"]}

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
    gather = partial(_rows_gather, cache, table)
    y_train = torch.from_numpy(labels).long().to(device)  # once; per step only the row indices move

    def build() -> Parts:
        model = FinetuneModel(cache.contract, cfg.model, n_classes)
        if encoder_states:
            model.load_encoders(encoder_states)
        model.to(device)
        optimizer = make_adam(model.parameters(), fc.lr, fc.weight_decay, device)
        t0 = fc.t0 if fc.t0 is not None else max(1, fc.epochs // 3)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=t0, eta_min=0.0)
        data_gen = np.random.default_rng(derive_seed(base, "data"))
        return Parts(model, optimizer, scheduler, {"data": data_gen})

    def train_epoch(run: Run) -> dict[str, Any]:
        model = run.parts.model
        plan = sample_index_batches(train_rows, fc.batch_size, run.parts.np_generators["data"],
                                    fc.steps_per_epoch, drop_last=False)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        n_seen = 0
        lr = run.parts.scheduler.get_last_lr()[0]  # the epoch's rate: the loop steps the scheduler after it
        every = release_interval(fc.batch_size)
        for i, (rows, batch) in enumerate(zip(plan, iter_tensor_batches(gather, plan, device), strict=True)):
            y = y_train[torch.from_numpy(rows).to(device, non_blocking=True)]
            with run.mixed:
                logits = model(batch)
            loss = F.cross_entropy(logits.float(), y)
            run.mixed.zero_grad()
            loss.backward()
            run.mixed.step()  # optimiser step; bf16 weight copies follow
            loss_sum += loss.detach() * len(rows)
            correct += (logits.detach().argmax(1) == y).sum()
            n_seen += len(rows)
            run.step += 1
            if (i + 1) % every == 0:
                release_pages(cache)
        return {"lr": lr, "steps": len(plan),
                "train": {"loss": loss_sum.item() / max(n_seen, 1), "accuracy": correct.item() / max(n_seen, 1)}}

    def evaluate(run: Run) -> dict[str, float]:
        val = _evaluate(run.parts.model, cache, table, val_rows, labels, cfg, device, fc.batch_size, run.mixed)
        release_pages(cache)
        return val

    def finish(run: Run) -> dict[str, Any]:
        if model_path is not None:
            weights = {k: v.detach().cpu() for k, v in run.parts.model.state_dict().items()}
            save_checkpoint(model_path, {"stage": "finetuned-model", "model": weights, "label": label_name,
                                         "n_classes": n_classes, "precision": run.precision,
                                         "cache_hash": cache.hash, "contract": cache.contract.to_dict()})
        proba = predict_rows(run.parts.model, cache, table, test_rows, cfg, device, fc.batch_size, run.mixed)
        if len(test_rows) == 0:  # no test rows (fit): an empty (0, K) table, not predict_rows' (0, 0)
            proba = np.zeros((0, n_classes))
        result = {"rows": test_rows, "y_true": labels[test_rows].astype(np.int64),
                  "y_pred": proba.argmax(1).astype(np.int64), "proba": proba}
        save_predictions(pred_path, result)
        write_text_atomic(done_path, json.dumps({"fold": int(fold.index), "label": label_name,  # last: the marker
                                                 "n_test": int(len(test_rows)), "history": run.history}, indent=1))
        return result

    def check_resume(path: Path, state: dict[str, Any]) -> None:
        check_fields(path, (("cache_hash", state.get("cache_hash"), cache.hash),
                            ("label", state.get("label"), label_name),
                            ("fold", state.get("fold"), int(fold.index))))

    spec = LoopSpec(
        stage="finetune", desc=f"finetune fold {fold.index} {label_name}", epochs=fc.epochs, device=device,
        init_seed=derive_seed(base, "init"), train_seed=derive_seed(base, "train"), build=build,
        train_epoch=train_epoch, evaluate=evaluate, finish=finish, out_dir=out_dir, finished=finished,
        check_resume=check_resume,
        identity={"config": cfg.model_dump(mode="json"), "contract": cache.contract.to_dict(),
                  "cache_hash": cache.hash, "label": label_name, "fold": int(fold.index)},
        precision=cfg.precision,
    )
    result = run_loop(spec, progress=progress, max_epochs_this_call=max_epochs_this_call, keep_checkpoint=keep)
    result.pop("epochs_done")
    return result


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
