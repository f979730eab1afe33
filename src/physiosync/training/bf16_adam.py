"""The bf16 path's optimiser step: fused Adam on the float32 master weights, fed by bf16 gradients, in chunks.

Why: at the paper's pre-training batch (32 windows per modality) a step is memory-bound on its 26 M
weights. The plain sequence — cast each bf16 weight gradient to a float32 ``.grad`` (write 104 MB), fused
Adam (read it back with the weights and both moments, write weights and moments), refresh the bf16 copies
(read the weights again) — moves ≈ 1 GB per step. Here each chunk of ``CHUNK`` elements is cast from the
bf16 gradient into a small float32 scratch buffer, updated by the same fused Adam kernel, and rounded into
its bf16 copy while it is still in cache: ≈ 0.73 GB, and no float32 gradient exists at all (see :data:`CHUNK`
for the measured times).

The arithmetic is the fused Adam kernel's (``torch._fused_adam_`` / ``torch._fused_adamw_``, the kernels
``torch.optim.Adam(fused=True)`` calls), element-wise, so chunking changes no bit; state lives in the
optimiser's own ``state`` under torch's names (``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints and
``load_state_dict`` are those of a plain fused Adam. Which optimisers qualify: :func:`supports`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Elements per fused-Adam call: the float32 weights, scratch gradient and moments of a call (16 B/element)
# plus its bf16 gradient and copy should still be in cache when the next pass over them runs. Measured on
# the 2-core Zen 5 (benchmarks' 1 s pre-training weights, whole step part, medians of 15 alternating):
# 128 K 27.4 ms, 256 K 23.9, 512 K 21.8, 1 M 21.2, 4 M 26.3 (small: per-call overhead; large: cache misses);
# the plain cast + fused Adam + refresh it replaces: ≈ 26 ms.
CHUNK = 1 << 19


def supports(optimizer: torch.optim.Optimizer, weights: list[torch.Tensor]) -> bool:
    """Whether :class:`ChunkedAdam` can replace ``optimizer.step()`` for ``weights``.

    Only a fused ``torch.optim.Adam`` on CPU (the kernel this module calls; on CUDA the plain path is
    already bandwidth-rich and a per-chunk launch would cost more than it saves), without AMSGrad or
    differentiable/capturable modes, with every weight float32 in one of its groups (the step passes no
    gradient scale: nothing in this project uses one).
    """
    if type(optimizer) is not torch.optim.Adam or not weights:
        return False
    owned = {id(p) for g in optimizer.param_groups for p in g["params"]}
    for g in optimizer.param_groups:
        if not g.get("fused") or g.get("amsgrad") or g.get("differentiable") or g.get("capturable"):
            return False
    return all(id(w) in owned and w.device.type == "cpu" and w.dtype == torch.float32 for w in weights)


@dataclass
class _Piece:
    """One slice of one weight: what a fused call gets for it."""

    param: torch.Tensor
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    grad: torch.Tensor  # bf16 view of the side gradient
    copy: torch.Tensor  # bf16 view of the weight copy
    step: torch.Tensor


def _init_state(optimizer: torch.optim.Optimizer, w: torch.Tensor) -> dict:
    """torch.optim.Adam's lazy state for a fused group (same keys, dtypes, devices)."""
    state = optimizer.state[w]
    if len(state) == 0:
        state["step"] = torch.zeros((), dtype=torch.float32, device=w.device)
        state["exp_avg"] = torch.zeros_like(w, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(w, memory_format=torch.preserve_format)
    return state


class ChunkedAdam:
    """One Adam step of some weights from bf16 gradients, rounding each updated chunk into its bf16 copy.

    The chunk plan (views into weights, moments, gradients and copies) is built once and reused while the
    optimiser's state tensors stay the same objects (``load_state_dict`` replaces them: the plan is rebuilt).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device, chunk: int = CHUNK) -> None:
        if chunk <= 0 or chunk % 64:
            # The fused kernel vectorises each tensor in cache-line units and treats a tensor's last
            # partial unit with scalar code, whose rounding can differ; pieces that start at multiples of
            # 64 elements keep every element on the path it takes in an unsplit call (bit-identical).
            raise ValueError(f"chunk must be a positive multiple of 64 elements, got {chunk}")
        self.optimizer, self.chunk = optimizer, int(chunk)
        self.scratch = torch.empty(self.chunk, device=device)  # float32 gradients of one call
        self._key: list[torch.Tensor] = []
        self._plan: list[tuple[dict, list[list[_Piece]]]] = []
        self._steps: list[torch.Tensor] = []

    def _build(self, weights: list[torch.Tensor], grads: list[torch.Tensor], copies: list[torch.Tensor]) -> None:
        opt = self.optimizer
        group_of = {id(p): i for i, g in enumerate(opt.param_groups) for p in g["params"]}
        by_group: dict[int, list[_Piece]] = {}
        self._steps, self._key = [], []
        for w, g, c in zip(weights, grads, copies, strict=True):
            state = _init_state(opt, w)
            self._steps.append(state["step"])
            self._key += [w, g, state["exp_avg"], state["exp_avg_sq"], state["step"]]
            flat = (w.detach().view(-1), state["exp_avg"].view(-1), state["exp_avg_sq"].view(-1), g.view(-1),
                    c.view(-1))
            pieces = by_group.setdefault(group_of[id(w)], [])
            for start in range(0, w.numel(), self.chunk):
                stop = min(start + self.chunk, w.numel())
                pieces.append(_Piece(*(t[start:stop] for t in flat), state["step"]))
        self._plan = [(opt.param_groups[gi], _batches(pieces, self.chunk)) for gi, pieces in by_group.items()]

    def _current(self, weights: list[torch.Tensor], grads: list[torch.Tensor]) -> bool:
        if len(self._key) != 5 * len(weights):
            return False
        state = self.optimizer.state
        for j, (w, g) in enumerate(zip(weights, grads, strict=True)):
            st = state.get(w)
            k = self._key[5 * j : 5 * j + 5]
            if (st is None or k[0] is not w or k[1] is not g or k[2] is not st.get("exp_avg")
                    or k[3] is not st.get("exp_avg_sq") or k[4] is not st.get("step")):
                return False
        return True

    @torch.no_grad()
    def step(self, weights: list[torch.Tensor], grads: list[torch.Tensor], copies: list[torch.Tensor]) -> None:
        """Adam on ``weights`` (which must have no ``.grad``) from bf16 ``grads``; ``copies`` follow."""
        if not weights:
            return
        if not self._current(weights, grads):
            self._build(weights, grads, copies)
        torch._foreach_add_(self._steps, 1)  # once per weight, as torch's fused Adam does before its kernel
        scratch = self.scratch
        for group, batches in self._plan:
            kernel = torch._fused_adamw_ if group.get("decoupled_weight_decay") else torch._fused_adam_
            beta1, beta2 = (float(b) for b in group["betas"])
            for batch in batches:
                offset, scratch_views = 0, []
                for p in batch:  # the bf16 gradient, cast into cache-resident float32
                    n = p.param.numel()
                    view = scratch[offset : offset + n]
                    view.copy_(p.grad)
                    scratch_views.append(view)
                    offset += n
                kernel([p.param for p in batch], scratch_views, [p.exp_avg for p in batch],
                       [p.exp_avg_sq for p in batch], [], [p.step for p in batch], amsgrad=False,
                       lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                       eps=group["eps"], maximize=group.get("maximize", False))
                torch._foreach_copy_([p.copy for p in batch], [p.param for p in batch])


def _batches(pieces: list[_Piece], chunk: int) -> list[list[_Piece]]:
    """Consecutive pieces packed into calls of at most ``chunk`` elements (small weights share one)."""
    out: list[list[_Piece]] = []
    size = chunk + 1
    for p in pieces:
        n = p.param.numel()
        if size + n > chunk:
            out.append([])
            size = 0
        out[-1].append(p)
        size += n
    return out
