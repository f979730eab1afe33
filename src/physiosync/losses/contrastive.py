"""Contrastive loss primitives: one NT-Xent and the in-batch retrieval metric (method-spec §4.1, §4.3).

Both LS-TCL (temporal, per modality) and CM-CA (cross-modal, after the half swap) are scored with the same
standard SimCLR NT-Xent, so there is exactly one implementation here. The authors' code uses two scales for
it (the Dependent variant returns the *sum* of both directions, i.e. 2 × NT-Xent; the Cross variant the
mean form); this module always returns the mean form and the objective applies explicit weights, so a factor
of two can never change silently (method-spec §10). The functions are tensor-in / scalar-out and know
nothing about models, datasets or batch layout; :mod:`physiosync.losses.objective` wires them up.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(z1: torch.Tensor, z2: torch.Tensor) -> None:
    if z1.ndim != 2 or z2.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"expected two (n, D) tensors of equal shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 1:
        raise ValueError("need at least one positive pair (n >= 1)")


def _at_least_float32(z: torch.Tensor) -> torch.Tensor:
    """Upcast half precision to float32; float32 and float64 keep their dtype (never a silent downcast)."""
    return z.to(torch.promote_types(z.dtype, torch.float32))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Standard SimCLR NT-Xent over ``n`` positive pairs, averaged over all ``2n`` anchors (§4.3).

    Rows are L2-normalised (cosine similarity), each anchor's own similarity is excluded, its positive is
    the same row of the other tensor and the remaining ``2n - 2`` rows are negatives. Similarities and the
    softmax are computed in at least float32: half-precision inputs are upcast, because at τ = 0.1 the
    logits span ±10 and bf16 rounding would visibly bias the loss; float64 inputs stay float64 (so the
    formula can be checked in double precision, where float32 rounding cannot mask an error).

    Args:
        z1: First member of each positive pair.
        z2: Second member of each positive pair (row ``i`` of ``z2`` is the positive of row ``i`` of ``z1``).
        temperature: Softmax temperature τ > 0 (0.1 Dependent, 0.07 Cross in the authors' code).

    Shape:
        z1: (n, D); z2: (n, D); returns a scalar tensor.

    Returns:
        Mean cross-entropy of identifying the positive among the other ``2n - 1`` rows.
    """
    _check_pair(z1, z2)
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(_at_least_float32(torch.cat([z1, z2], dim=0)), dim=1)  # (2n, D)
    logits = (z @ z.T) / temperature  # (2n, 2n)
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    # -inf (not a large negative number) so the self term contributes exactly zero probability mass.
    logits = logits.masked_fill(self_mask, float("-inf"))
    idx = torch.arange(n, device=z.device)
    targets = torch.cat([idx + n, idx])  # anchor i ↔ i + n
    return F.cross_entropy(logits, targets)


@torch.no_grad()
def top1_retrieval_tensor(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """:func:`top1_retrieval` as a detached 0-d tensor (float32, or float64 for float64 inputs) on the inputs' device.

    Why: a training loop that sums these on the device reads them once per epoch; a Python float per
    step would be a host-device synchronisation per step on a GPU.
    """
    _check_pair(z1, z2)
    sim = F.normalize(_at_least_float32(z1), dim=1) @ F.normalize(_at_least_float32(z2), dim=1).T  # (n, n)
    hits = sim.argmax(dim=1) == torch.arange(z1.shape[0], device=z1.device)
    return hits.float().mean()


@torch.no_grad()
def top1_retrieval(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Fraction of rows of ``z1`` whose most similar row of ``z2`` is their own positive.

    This is the authors' pre-training monitoring metric (§4.1 item 7): argmax over the cosine-similarity
    block ``z1·z2ᵀ`` (rows of ``z2`` L2-normalised like in the loss; normalising ``z1`` does not change a
    row's argmax). Chance level is ``1/n``.

    Args:
        z1: Queries (first member of each pair).
        z2: Keys (second member of each pair).

    Shape:
        z1: (n, D); z2: (n, D).

    Returns:
        Accuracy in [0, 1] as a Python float (detached; for logging only).
    """
    return float(top1_retrieval_tensor(z1, z2).item())
