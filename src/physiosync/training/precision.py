"""bf16 training without autocast: bf16 GEMMs from kept bf16 weight copies, everything else in float32.

Why not ``torch.autocast``: it casts every weight to bf16 in every forward pass and casts every weight
gradient back (≈ 500 copy kernels per pre-training step), and it runs everything after a matrix multiply —
BatchNorm, LayerNorm, the loss — in bf16, where some CPU kernels are slower than in float32. On the paper's
pre-training batch (32 windows per modality) the model is memory-bound on its weights, so autocast gained
nothing over fp32 (issue 12's profile).

What this module does instead (mixed precision with float32 master weights):

- :class:`Bf16Matmuls` keeps one bf16 copy of the weight of every ``nn.Linear`` of a model, in one flat
  buffer. The optimiser updates the float32 parameters; :meth:`Bf16Matmuls.step` then has the copies follow
  — the only cast of a weight per step. With a fused CPU Adam the weight gradients stay bf16 and the step
  runs the same fused kernel chunk by chunk, rounding each chunk into its copy while it is in cache
  (:mod:`physiosync.training.bf16_adam`; bit-identical to cast + ``optimizer.step()`` + refresh).
- While the context is entered, every ``nn.Linear`` of the model (including the attention's qkv, a
  ``BiasPerCallLinear``) runs as :class:`_Bf16Linear`: inputs rounded to bf16, GEMM in bf16 with
  float32 accumulation, output and all gradients returned in float32. So only matrix multiplies change
  precision; normalisation, softmax, attention over the few tokens, the loss and the optimiser stay
  float32 (the loss's logits/softmax must, see :mod:`physiosync.losses.contrastive`).

Numerics: a bf16 rounding has relative error ≤ 2⁻⁸ ≈ 3.9e-3 (8-bit significand), on weights and
activations entering each GEMM; accumulation is float32. ``fp32`` runs never enter this module's code
path, so their results are bit-for-bit those of a build without it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from physiosync.training import bf16_adam


class _Bf16Linear(torch.autograd.Function):
    """``y = x Wᵀ + b`` with bf16 operands and float32 output/gradients (module docstring).

    Shape:
        x: (..., in); weight, shadow: (out, in); bias: (out,) or None; returns (..., out) float32.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                shadow: torch.Tensor, sink: tuple[_SideGrads, int] | None) -> torch.Tensor:
        xb = x.to(shadow.dtype)
        out = F.linear(xb, shadow).to(x.dtype)
        if bias is not None:
            out = out.add_(bias)
        ctx.save_for_backward(xb, shadow)  # the bf16 input: half the memory of x, and what the GEMM needs
        ctx.has_bias = bias is not None
        ctx.dtype = x.dtype
        ctx.sink = sink
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):  # type: ignore[override]
        saved_x, shadow = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])
        gb = g2.to(shadow.dtype)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = (gb @ shadow).to(ctx.dtype).view(*grad.shape[:-1], shadow.shape[1])
        if ctx.needs_input_grad[1]:
            x2 = saved_x.reshape(-1, saved_x.shape[-1])
            # bf16 GEMM + one cast beat a float32 GEMM 2x even for the 32-row pre-training batch (the
            # 2560 x 20480 embedding gradient: 24 vs 53 ms on one Zen 5 core).
            sink = ctx.sink
            if sink is not None and sink[0].take(sink[1]):
                # the bf16 GEMM writes the optimiser's input directly; no float32 .grad (bf16_adam)
                torch.mm(gb.t(), x2, out=sink[0].grads[sink[1]])
            else:
                grad_w = (gb.t() @ x2).to(ctx.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b, None, None


class _SideGrads:
    """bf16 weight gradients kept beside the model, for :meth:`physiosync.training.bf16_adam.ChunkedAdam.step`.

    A weight's first gradient of a step is written here (bf16, the GEMM's own output); a second use of the
    same weight in the step (shared layer, several backward passes) goes to its float32 ``.grad`` as
    usual and :meth:`Bf16Matmuls.step` adds the two, so nothing is lost and nothing is summed in bf16.
    """

    def __init__(self, copies: list[torch.Tensor]) -> None:
        self.flat, self.grads = _flat_views(copies, copies[0].dtype, copies[0].device)
        self.filled = [False] * len(copies)

    def take(self, i: int) -> bool:
        """Claim slot ``i`` for this step's first gradient; False if it already holds one."""
        if self.filled[i]:
            return False
        self.filled[i] = True
        return True

    def clear(self) -> None:
        self.filled = [False] * len(self.filled)


def _bf16_forward(module: nn.Linear, shadow: torch.Tensor, sink: tuple[_SideGrads, int] | None):  # noqa: ANN202
    """The forward an ``nn.Linear`` gets while :class:`Bf16Matmuls` is entered.

    Accepts an optional per-call bias (``BiasPerCallLinear``, the attention's qkv); otherwise the
    module's own bias.
    """

    def forward(x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return _Bf16Linear.apply(x, module.weight, module.bias if bias is None else bias, shadow, sink)

    return forward


class Bf16Matmuls:
    """bf16 copies of a model's ``nn.Linear`` weights and the context that makes GEMMs use them.

    Use::

        mixed = Bf16Matmuls(model, optimizer)  # after the model is on its device and its state is loaded
        with mixed:
            loss = compute_loss(model, batch)   # every Linear GEMM in bf16, the rest float32
        mixed.zero_grad()
        loss.backward()
        mixed.step()                            # the optimiser step; the copies follow the new weights

    Without an optimiser (evaluation, prediction, tests) weight gradients go to ``.grad`` as usual and
    :meth:`refresh` brings the copies up to date after anything that changes the weights
    (``optimizer.step()``, ``load_state_dict``).

    With a fused CPU Adam (:func:`physiosync.training.bf16_adam.supports`), each weight's gradient stays
    in bf16 beside the model and :meth:`step` runs fused Adam chunk by chunk, refreshing each chunk's copy
    while it is in cache (:mod:`physiosync.training.bf16_adam`); ``.grad`` of those weights stays ``None``.
    So use :meth:`zero_grad` / :meth:`step` rather than the optimiser's own. Other optimisers: :meth:`step`
    = ``optimizer.step()`` + :meth:`refresh`.

    How the GEMMs are switched: entering gives every ``nn.Linear`` of the model an instance ``forward``
    (:func:`_bf16_forward`) that shadows the class's; leaving deletes it. So the model's code must run
    each GEMM as a module call (``BiasPerCallLinear`` for the attention's qkv). An earlier version routed
    ``F.linear`` through a ``TorchFunctionMode`` instead, which costs a Python call on *every* torch
    function of the forward pass (≈ 460 per pre-training forward, ≈ 2.6 ms of a ≈ 55 ms step).
    """

    enabled = True

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                 dtype: torch.dtype = torch.bfloat16) -> None:
        self.modules = [m for m in model.modules() if isinstance(m, nn.Linear) and m.weight is not None]
        self.weights = [m.weight for m in self.modules]
        device = self.weights[0].device if self.weights else torch.device("cpu")
        self.flat, self.copies = _flat_views(self.weights, dtype, device)  # one allocation for all copies
        self.optimizer = optimizer
        self.side = _SideGrads(self.copies) if optimizer is not None and bf16_adam.supports(
            optimizer, self.weights) else None
        self._adam = bf16_adam.ChunkedAdam(optimizer, device) if self.side is not None else None
        self._forwards = [_bf16_forward(m, c, None if self.side is None else (self.side, i))
                          for i, (m, c) in enumerate(zip(self.modules, self.copies, strict=True))]
        self._depth = 0  # re-entrant: an evaluation inside a training context must not switch back early
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Round every float32 weight into its bf16 copy (one multi-tensor pass)."""
        if self.weights:
            torch._foreach_copy_(self.copies, [w.detach() for w in self.weights])

    def zero_grad(self) -> None:
        """``optimizer.zero_grad(set_to_none=True)`` and forget any bf16 gradient not yet stepped."""
        _attached(self.optimizer).zero_grad(set_to_none=True)
        if self.side is not None:
            self.side.clear()

    @torch.no_grad()
    def step(self) -> None:
        """The optimiser step for every parameter with a gradient, then the copies follow (class docstring)."""
        optimizer = _attached(self.optimizer)
        if self.side is None:
            optimizer.step()
            self.refresh()
            return
        side, stepped_plain = self.side, []
        for i, w in enumerate(self.weights):
            if w.grad is not None:  # a float32 gradient: optimizer.step() updates this weight
                if side.filled[i]:  # used twice in the step: fold its bf16 first gradient in
                    w.grad.add_(side.grads[i])
                    side.filled[i] = False
                stepped_plain.append(i)
        optimizer.step()  # biases, norms, embeddings, weights with a float32 .grad; skips the others
        todo = [i for i, f in enumerate(side.filled) if f]
        self._adam.step([self.weights[i] for i in todo], [side.grads[i] for i in todo],  # type: ignore[union-attr]
                        [self.copies[i] for i in todo])
        if stepped_plain:
            torch._foreach_copy_([self.copies[i] for i in stepped_plain],
                                 [self.weights[i].detach() for i in stepped_plain])
        side.clear()

    def __enter__(self) -> Bf16Matmuls:
        if self._depth == 0:
            for m, fwd in zip(self.modules, self._forwards, strict=True):
                m.forward = fwd  # instance attribute: nn.Module.__call__ looks up self.forward
        self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            for m in self.modules:
                m.__dict__.pop("forward", None)


def _flat_views(like: list[torch.Tensor], dtype: torch.dtype,
                device: torch.device) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One buffer and a view of it shaped like each tensor of ``like``, in order."""
    flat = torch.empty(sum(t.numel() for t in like), dtype=dtype, device=device)
    views, offset = [], 0
    for t in like:
        views.append(flat[offset : offset + t.numel()].view(t.shape))
        offset += t.numel()
    return flat, views


def _attached(optimizer: torch.optim.Optimizer | None) -> torch.optim.Optimizer:
    if optimizer is None:
        raise ValueError("this precision context has no optimiser: pass one to mixed_precision(model, "
                         "precision, optimizer) to use zero_grad()/step()")
    return optimizer


class Fp32:
    """The float32 counterpart of :class:`Bf16Matmuls`: enters nothing, refreshes nothing."""

    enabled = False

    def __init__(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.optimizer = optimizer

    def refresh(self) -> None:
        return None

    def zero_grad(self) -> None:
        _attached(self.optimizer).zero_grad(set_to_none=True)

    def step(self) -> None:
        _attached(self.optimizer).step()

    def __enter__(self) -> Fp32:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def mixed_precision(model: nn.Module, precision: str,
                    optimizer: torch.optim.Optimizer | None = None) -> Bf16Matmuls | Fp32:
    """The training/evaluation precision context for ``model``: ``bf16`` → :class:`Bf16Matmuls`, else fp32.

    ``precision`` must be resolved (``fp32`` or ``bf16``, see :func:`physiosync.training.runtime.resolve_precision`).
    ``optimizer``: the one training ``model``, for the context's ``zero_grad()`` / ``step()``.
    """
    if precision == "bf16":
        return Bf16Matmuls(model, optimizer)
    if precision != "fp32":
        raise ValueError(f"precision must be resolved to fp32 or bf16, got {precision!r}")
    return Fp32(optimizer)
