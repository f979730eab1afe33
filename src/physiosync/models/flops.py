"""Forward FLOPs per sample, counted by ``torch.utils.flop_counter.FlopCounterMode`` (method-spec §8.1).

FLOPs = 2 × multiply-adds of matmul-like ops (the counter ignores element-wise ops), the same convention
as the spec's table. Modules may live on the ``meta`` device: counting needs shapes only, so even the
120 M-parameter DEAP 5 s model is described without allocating weights.

Our EEG encoders count fewer FLOPs than §8.1 (e.g. DEAP EEG 1 s 9.5 vs 11.3 MFLOPs): prompt tokens are
used as keys/values only, since their query rows, output projection and MLP outputs are discarded by the
block (see :class:`physiosync.models.encoder.Block`); the result is mathematically identical.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], Any]) -> int:
    """Total FLOPs of everything ``fn`` runs (forward only when called under ``no_grad``)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def _device_of(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def module_flops(module: nn.Module, *input_shapes: tuple[int, ...], batch_size: int = 1) -> float:
    """Forward FLOPs per sample of ``module(*inputs)`` for inputs of the given per-sample shapes.

    Runs in eval mode (BatchNorm uses running statistics, so a batch of one is valid) and restores the
    previous mode.
    """
    device = _device_of(module)
    inputs = [torch.zeros((batch_size, *s), device=device) for s in input_shapes]
    was_training = module.training
    module.eval()
    try:
        total = count_flops(lambda: module(*inputs))
    finally:
        module.train(was_training)
    return total / batch_size


def batch_flops(module: nn.Module, batch_shapes: dict[str, tuple[int, ...]], batch_size: int = 1) -> float:
    """Forward FLOPs per sample of a module taking a ``{modality: (B, ...)}`` batch (the fine-tuning model)."""
    device = _device_of(module)
    batch = {k: torch.zeros((batch_size, *s), device=device) for k, s in batch_shapes.items()}
    was_training = module.training
    module.eval()
    try:
        total = count_flops(lambda: module(batch))
    finally:
        module.train(was_training)
    return total / batch_size
