"""EEGNet-8,2 (Lawhern et al., "EEGNet: a compact convolutional neural network for EEG-based
brain-computer interfaces", J. Neural Eng. 15 056013, 2018), implemented from the paper's description.

The compact raw-EEG CNN baseline of evaluation-protocols.md §4.3: if PhysioSync does not beat a
~2k-parameter CNN trained on the same folds, its pre-training is not what helps. Architecture (paper,
Table 2 and §2.2), input ``(B, 1, C, T)``:

1. temporal conv, F1 = 8 filters of length ``sfreq / 2`` ("same" padding, no bias) → BatchNorm;
2. depthwise spatial conv over all C channels, D = 2 filters per temporal filter, max-norm 1 on each
   filter's weights → BatchNorm → ELU → average pool (1, 4) → dropout;
3. separable conv: depthwise (1, 16) then pointwise to F2 = 16 maps → BatchNorm → ELU → average pool
   (1, 8) → dropout;
4. flatten → dense to ``n_classes`` with max-norm 0.25.

Dropout defaults to 0.25, the paper's cross-subject value (our pooled protocols train across subjects;
the paper uses 0.5 within-subject). Max-norm constraints are applied after each optimiser step
(:meth:`EEGNet.apply_max_norm`), as Keras applies constraints after the update.

Short windows: the two pools shrink time by 32, so windows ≥ 32 samples (a 1 s window at 128 Hz gives a
4-sample map) use the paper's pools unchanged; for shorter windows each pool is reduced to what the
remaining length allows, so the final feature map always keeps at least one sample.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from physiosync.errors import DataFormatError
from physiosync.training.checkpoint import load_checkpoint, save_checkpoint
from physiosync.training.loop import LoopSpec, Parts, Run, check_fields, run_loop
from physiosync.training.runtime import resolve_device

MODEL_NAME = "eegnet.pt"  # written last: its presence marks a finished EEGNet training


class EEGNet(nn.Module):
    """EEGNet-F1,D with a dense classification head.

    Args:
        n_chans: EEG channels C.
        n_times: Samples per window T.
        n_classes: Output classes.
        sfreq: Sampling rate in Hz; sets the temporal kernel to ``sfreq / 2`` (captures ≥ 2 Hz).
        f1: Temporal filters F1.
        d: Spatial filters per temporal filter D.
        f2: Pointwise filters F2 (paper: F1 * D).
        sep_kernel: Length of the separable conv's depthwise kernel.
        pool1, pool2: Average-pool lengths (reduced for windows shorter than ``pool1 * pool2``).
        dropout: Dropout probability after each block.
    """

    def __init__(
        self,
        n_chans: int,
        n_times: int,
        n_classes: int,
        sfreq: float = 128.0,
        f1: int = 8,
        d: int = 2,
        f2: int = 16,
        sep_kernel: int = 16,
        pool1: int = 4,
        pool2: int = 8,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        if n_chans < 1 or n_times < 1 or n_classes < 2:
            raise ValueError(f"need n_chans >= 1, n_times >= 1, n_classes >= 2; got {n_chans}, {n_times}, "
                             f"{n_classes}")
        self.n_chans, self.n_times, self.n_classes = n_chans, n_times, n_classes
        self.pool1 = max(1, min(pool1, n_times))
        self.pool2 = max(1, min(pool2, n_times // self.pool1))
        self.n_times_out = n_times // self.pool1 // self.pool2
        kernel = max(1, int(round(sfreq / 2)))

        # "same" padding, split as Keras does (the extra sample of an even kernel goes right); explicit
        # pads because torch's padding="same" warns and copies for even kernels anyway.
        self.temporal_pad = nn.ZeroPad2d(((kernel - 1) // 2, kernel // 2, 0, 0))
        self.temporal = nn.Conv2d(1, f1, (1, kernel), bias=False)
        self.bn1 = nn.BatchNorm2d(f1)
        self.spatial = nn.Conv2d(f1, f1 * d, (n_chans, 1), groups=f1, bias=False)
        self.bn2 = nn.BatchNorm2d(f1 * d)
        self.pool_a = nn.AvgPool2d((1, self.pool1))
        self.drop_a = nn.Dropout(dropout)
        self.separable_pad = nn.ZeroPad2d(((sep_kernel - 1) // 2, sep_kernel // 2, 0, 0))
        self.separable_depth = nn.Conv2d(f1 * d, f1 * d, (1, sep_kernel), groups=f1 * d, bias=False)
        self.separable_point = nn.Conv2d(f1 * d, f2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(f2)
        self.pool_b = nn.AvgPool2d((1, self.pool2))
        self.drop_b = nn.Dropout(dropout)
        self.classifier = nn.Linear(f2 * self.n_times_out, n_classes)
        self.act = nn.ELU()
        self.apply_max_norm()

    def forward_features(self, x: Tensor) -> Tensor:
        """Flattened output of the convolutional blocks.

        Shape: x (B, C, T) -> (B, F2 * T // (pool1 * pool2)).
        """
        if x.ndim != 3 or x.shape[1] != self.n_chans or x.shape[2] != self.n_times:
            raise ValueError(f"expected input (B, {self.n_chans}, {self.n_times}), got {tuple(x.shape)}")
        h = x.unsqueeze(1)  # (B, 1, C, T): channels become the conv's height axis
        h = self.bn1(self.temporal(self.temporal_pad(h)))  # (B, F1, C, T)
        h = self.act(self.bn2(self.spatial(h)))  # (B, F1*D, 1, T)
        h = self.drop_a(self.pool_a(h))  # (B, F1*D, 1, T // pool1)
        h = self.separable_point(self.separable_depth(self.separable_pad(h)))  # (B, F2, 1, T // pool1)
        h = self.drop_b(self.pool_b(self.act(self.bn3(h))))  # (B, F2, 1, T_out)
        return h.flatten(1)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (softmax is left to the loss / :func:`predict_proba`).

        Shape: x (B, C, T) -> (B, n_classes).
        """
        return self.classifier(self.forward_features(x))

    @torch.no_grad()
    def apply_max_norm(self) -> None:
        """Clip each spatial filter to L2 norm ≤ 1 and each dense unit's weights to ≤ 0.25 (paper §2.2)."""
        self.spatial.weight.copy_(torch.renorm(self.spatial.weight, p=2, dim=0, maxnorm=1.0))
        self.classifier.weight.copy_(torch.renorm(self.classifier.weight, p=2, dim=0, maxnorm=0.25))


def _to_tensor(x: np.ndarray, device: torch.device) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)


def train_eegnet(
    x_train: np.ndarray,
    y_train: np.ndarray,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    n_classes: int | None = None,
    sfreq: float = 128.0,
    out_dir: str | Path | None = None,
    meta: dict[str, Any] | None = None,
    progress: bool = False,
    max_epochs_this_call: int | None = None,
    keep_checkpoint: bool = False,
    **model_kwargs: object,
) -> EEGNet:
    """Train EEGNet with Adam and cross-entropy; deterministic for a seed on a given device.

    Mini-batches are drawn by indexing ``x_train`` (which may be a read-only memmap) with a seeded
    permutation, so only one batch is copied into memory at a time. Global RNG state is saved and restored
    around training so the caller's random streams are untouched. Epochs go through the shared resumable
    loop (:func:`physiosync.training.loop.run_loop`): with ``out_dir`` every epoch is checkpointed, a rerun
    resumes, and the trained weights are written last, as ``eegnet.pt`` (the completion marker; a finished
    directory is loaded, not trained). EEGNet always trains in float32 (no bf16 path).

    Args:
        x_train: EEG windows. Shape: (N, C, T).
        y_train: Integer labels. Shape: (N,).
        epochs: Passes over the training set.
        batch_size: Windows per step.
        lr: Adam learning rate.
        seed: Seeds weight initialisation, shuffling and dropout.
        device: ``cpu``, ``cuda``, ``mps`` or ``auto``.
        n_classes: Output classes; None = ``y_train.max() + 1``.
        sfreq: Sampling rate, for the temporal kernel length.
        out_dir: Where ``checkpoint.pt`` and ``eegnet.pt`` go; ``None`` = train in memory only.
        meta: JSON-able facts the data of ``x_train`` stands for (e.g. cache hash, fold, label): stored in
            the checkpoint and compared on resume, with the training settings, so a checkpoint is never
            continued on other data.
        progress: Show a per-epoch progress bar.
        max_epochs_this_call: Stop after this many epochs (checkpoint written) without finishing.
        keep_checkpoint: Keep ``checkpoint.pt`` once ``eegnet.pt`` exists.
        **model_kwargs: Forwarded to :class:`EEGNet` (e.g. ``dropout``).

    Returns:
        The trained model in eval mode, with ``train_losses`` (mean loss per epoch) and ``finished``
        (``False`` after an interrupted call: the weights of the last epoch trained) attached.
    """
    y = np.asarray(y_train, dtype=np.int64)
    if x_train.ndim != 3 or len(x_train) != len(y):
        raise ValueError(f"x_train must be (N, C, T) aligned with y_train; got {x_train.shape}, {y.shape}")
    dev = resolve_device(device)
    n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
    n = len(y)
    out = None if out_dir is None else Path(out_dir)
    identity = {"eegnet": {"n_train": n, "shape": [int(x_train.shape[1]), int(x_train.shape[2])],
                           "n_classes": n_classes, "seed": int(seed), "lr": float(lr), "batch_size": int(batch_size),
                           "sfreq": float(sfreq), "model_kwargs": {k: repr(v) for k, v in model_kwargs.items()},
                           "meta": meta or {}}}
    y_t = torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    built: list[Parts] = []

    def make_model() -> EEGNet:
        return EEGNet(x_train.shape[1], x_train.shape[2], max(2, n_classes), sfreq=sfreq,
                      **model_kwargs).to(dev)  # type: ignore[arg-type]

    def build() -> Parts:
        model = make_model()
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        built.append(Parts(model, opt, None, {}, {"shuffle": torch.Generator().manual_seed(seed)}))
        return built[-1]

    def train_epoch(run: Run) -> dict[str, Any]:
        model, opt = run.parts.model, run.parts.optimizer
        perm = torch.randperm(n, generator=run.parts.torch_generators["shuffle"]).numpy()
        total, steps = 0.0, 0
        for start in range(0, n, batch_size):
            idx = np.sort(perm[start:start + batch_size])  # sorted: contiguous reads from a memmap
            if len(idx) < 2:  # BatchNorm cannot train on a single sample
                continue
            xb = _to_tensor(x_train[idx], dev)
            yb = y_t[idx].to(dev)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            model.apply_max_norm()
            total += float(loss.detach()) * len(idx)
            steps += 1
        run.step += steps
        return {"steps": steps, "train": {"loss": total / n}}

    def finish(run: Run) -> dict[str, Any]:
        if out is not None:
            save_checkpoint(out / MODEL_NAME, {"stage": "eegnet-model", "model": run.parts.model.state_dict(),
                                               "history": run.history, **identity})
        return {"model": run.parts.model}

    def check_resume(path: Path, state: dict[str, Any]) -> None:
        check_fields(path, (("eegnet", state.get("eegnet"), identity["eegnet"]),))

    def finished() -> dict[str, Any] | None:
        if out is None or not (out / MODEL_NAME).is_file():
            return None
        state = load_checkpoint(out / MODEL_NAME)
        check_resume(out / MODEL_NAME, state)
        model = make_model()
        try:
            model.load_state_dict(state["model"])
        except (KeyError, RuntimeError) as e:
            raise DataFormatError(out / MODEL_NAME, "model", f"unusable ({e})", "EEGNet weights") from None
        return {"model": model, "history": list(state["history"])}

    spec = LoopSpec(stage="eegnet", desc="eegnet", epochs=epochs, device=dev, init_seed=seed, build=build,
                    train_epoch=train_epoch, finish=finish, out_dir=out, finished=finished,
                    check_resume=check_resume, identity=identity, precision="fp32", isolate_rng=True)
    result = run_loop(spec, progress=progress, max_epochs_this_call=max_epochs_this_call,
                      keep_checkpoint=keep_checkpoint)
    model = result["model"] if "model" in result else built[-1].model
    model.eval()
    model.train_losses = [h["train"]["loss"] for h in result["history"]]  # type: ignore[assignment]
    model.finished = bool(result["finished"])  # type: ignore[assignment]
    return model


@torch.no_grad()
def predict_proba(model: EEGNet, x: np.ndarray, batch_size: int = 256, device: str | None = None) -> np.ndarray:
    """Softmax class probabilities in eval mode (dropout off, BatchNorm running statistics).

    Args:
        model: A trained :class:`EEGNet`.
        x: EEG windows. Shape: (N, C, T).
        batch_size: Windows per forward pass (memory, not results).
        device: Where to run; None = the model's device.

    Returns:
        Shape: (N, n_classes), rows summing to 1.
    """
    dev = next(model.parameters()).device if device is None else resolve_device(device)
    model = model.to(dev)
    was_training = model.training
    model.eval()
    out = [torch.softmax(model(_to_tensor(x[s:s + batch_size], dev)), dim=1).cpu().numpy()
           for s in range(0, len(x), batch_size)]
    model.train(was_training)
    return np.concatenate(out, axis=0) if out else np.empty((0, model.n_classes), dtype=np.float32)
