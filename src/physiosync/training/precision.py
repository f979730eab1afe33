"""bf16 training without autocast: bf16 GEMMs from kept bf16 weight copies, everything else in float32.

Why not ``torch.autocast``: it casts every weight to bf16 in every forward pass and casts every weight
gradient back (≈ 500 copy kernels per pre-training step), and it runs everything after a matrix multiply —
BatchNorm, LayerNorm, the loss — in bf16, where some CPU kernels are slower than in float32. On the paper's
pre-training batch (32 windows per modality) the model is memory-bound on its weights, so autocast gained
nothing over fp32 (issue 12's profile).

What this module does instead (mixed precision with float32 master weights):

- :class:`Bf16Matmuls` keeps one bf16 copy of the weight of every ``nn.Linear`` of a model, in one flat
  buffer. The optimiser updates the float32 parameters (fused Adam, unchanged); :meth:`Bf16Matmuls.refresh`
  then rewrites all copies in one pass — the only cast of a weight per step.
- While the context is entered, every ``F.linear`` on one of those weights (``nn.Linear`` modules and the
  attention's direct ``F.linear``) runs as :class:`_Bf16Linear`: inputs rounded to bf16, GEMM in bf16 with
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
from torch.overrides import TorchFunctionMode


class _Bf16Linear(torch.autograd.Function):
    """``y = x Wᵀ + b`` with bf16 operands and float32 output/gradients (module docstring).

    Shape:
        x: (..., in); weight, shadow: (out, in); bias: (out,) or None; returns (..., out) float32.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                shadow: torch.Tensor) -> torch.Tensor:
        xb = x.to(shadow.dtype)
        out = F.linear(xb, shadow).to(x.dtype)
        if bias is not None:
            out = out.add_(bias)
        ctx.save_for_backward(xb, shadow)  # the bf16 input: half the memory of x, and what the GEMM needs
        ctx.has_bias = bias is not None
        ctx.dtype = x.dtype
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
            grad_w = (gb.t() @ x2).to(ctx.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b, None


class _RouteLinear(TorchFunctionMode):
    """Torch-function mode that sends ``F.linear`` on a registered weight to :class:`_Bf16Linear`."""

    def __init__(self, shadows: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> None:
        super().__init__()
        self.shadows = shadows

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1] if len(args) > 1 else kwargs["weight"]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            entry = self.shadows.get(id(weight))
            if entry is not None and entry[0] is weight:
                return _Bf16Linear.apply(x, weight, bias, entry[1])
        return func(*args, **kwargs)


class Bf16Matmuls:
    """bf16 copies of a model's ``nn.Linear`` weights and the context that makes GEMMs use them.

    Use::

        mixed = Bf16Matmuls(model)            # after the model is on its device and its state is loaded
        with mixed:
            loss = compute_loss(model, batch)  # every Linear GEMM in bf16, the rest float32
        loss.backward(); optimizer.step()
        mixed.refresh()                        # copies follow the updated float32 weights

    Call :meth:`refresh` after anything that changes the weights (optimiser step, ``load_state_dict``).
    """

    enabled = True

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        self.weights = [m.weight for m in model.modules() if isinstance(m, nn.Linear) and m.weight is not None]
        total = sum(w.numel() for w in self.weights)
        device = self.weights[0].device if self.weights else torch.device("cpu")
        self.flat = torch.empty(total, dtype=dtype, device=device)  # one allocation for all copies
        self.copies: list[torch.Tensor] = []
        offset = 0
        for w in self.weights:
            self.copies.append(self.flat[offset : offset + w.numel()].view(w.shape))
            offset += w.numel()
        self._mode = _RouteLinear({id(w): (w, c) for w, c in zip(self.weights, self.copies, strict=True)})
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Round every float32 weight into its bf16 copy (one multi-tensor pass)."""
        if self.weights:
            torch._foreach_copy_(self.copies, [w.detach() for w in self.weights])

    def __enter__(self) -> Bf16Matmuls:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


class Fp32:
    """The float32 counterpart of :class:`Bf16Matmuls`: enters nothing, refreshes nothing."""

    enabled = False

    def refresh(self) -> None:
        return None

    def __enter__(self) -> Fp32:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def mixed_precision(model: nn.Module, precision: str) -> Bf16Matmuls | Fp32:
    """The training/evaluation precision context for ``model``: ``bf16`` → :class:`Bf16Matmuls`, else fp32.

    ``precision`` must be resolved (``fp32`` or ``bf16``, see :func:`physiosync.training.runtime.resolve_precision`).
    """
    if precision == "bf16":
        return Bf16Matmuls(model)
    if precision != "fp32":
        raise ValueError(f"precision must be resolved to fp32 or bf16, got {precision!r}")
    return Fp32()
