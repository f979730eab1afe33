import math

import pytest
import torch

from physiosync.losses.contrastive import nt_xent, top1_retrieval


def nt_xent_tol(dtype: torch.dtype, n: int, dim: int, tau: float, value: float) -> float:
    """Worst-case absolute forward error of :func:`nt_xent` computed in ``dtype`` (u = eps/2).

    Normalising a row costs ≤ (D/2 + 2)u relative per element; a cosine of two unit rows is a D-term dot
    product, so its error is ≤ (2D + 4)u (Σ|a_i·b_i| ≤ 1), and dividing by τ adds one rounding: each logit
    is off by ≤ (2D + 5)u/τ. A row's loss (log-sum-exp minus the positive's logit) moves by at most twice
    that (the shifts x - max are rounded too, covered by the +5). Summing 2n − 1 exponentials (each within
    2u) costs ≤ 2n·u in the log, and the row's final subtraction plus the mean over 2n anchors ≤ (2n + 2)u
    of |L|: together ≤ (4n + 4)u·max(1, |L|). A bound from the arithmetic (recursive summation, the worst
    order), not from what one CPU's kernels happened to round to.
    """
    u = torch.finfo(dtype).eps / 2
    return 2 * (2 * dim + 5) * u / tau + (4 * n + 4) * u * max(1.0, abs(value))


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    """NT-Xent written out anchor by anchor, in float64, straight from the SimCLR definition."""
    n = z1.shape[0]
    rows = [r / r.norm() for r in torch.cat([z1, z2]).double()]
    total = 0.0
    for i in range(2 * n):
        pos = i + n if i < n else i - n
        denom = sum(math.exp(float(rows[i] @ rows[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(rows[i] @ rows[pos]) / tau) / denom)
    return total / (2 * n)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n,dim,tau", [(1, 3, 0.5), (4, 8, 0.1), (7, 5, 0.07), (16, 32, 1.0)])
def test_matches_reference(n, dim, tau, dtype):
    # float64: the formula itself (tolerance ~1e-14); float32: the precision training runs at, against the
    # float64 reference of the same inputs, within nt_xent_tol's worst-case bound (≤ 5e-5 here).
    g = torch.Generator().manual_seed(n * 100 + dim)
    z1, z2 = torch.randn(n, dim, generator=g).to(dtype), torch.randn(n, dim, generator=g).to(dtype)
    ref = reference_nt_xent(z1, z2, tau)
    assert nt_xent(z1, z2, tau).item() == pytest.approx(ref, abs=nt_xent_tol(dtype, n, dim, tau, ref))


def test_identical_positives_orthogonal_negatives_closed_form():
    # Anchor i: positive cosine 1, the other 2n-2 rows cosine 0, so
    # loss = -log(e^{1/τ} / (e^{1/τ} + (2n-2)·e^0)) = log(1 + (2n-2)·e^{-1/τ}).
    n, tau = 5, 0.3
    z = torch.eye(n, 9, dtype=torch.float64) * 3.0  # a formula test: float64, tolerance from nt_xent_tol
    expected = math.log(1 + (2 * n - 2) * math.exp(-1 / tau))
    tol = nt_xent_tol(torch.float64, n, 9, tau, expected)
    assert nt_xent(z, z.clone(), tau).item() == pytest.approx(expected, abs=tol)


def test_all_rows_identical_is_log_of_candidates():
    # All logits equal, so the positive gets probability 1/(2n-1) whatever τ is.
    n = 6
    z = torch.ones(n, 4, dtype=torch.float64)
    for tau in (0.05, 0.5, 5.0):
        expected = math.log(2 * n - 1)
        tol = nt_xent_tol(torch.float64, n, 4, tau, expected)
        assert nt_xent(z, z, tau).item() == pytest.approx(expected, abs=tol)


def test_invariant_to_feature_scaling():
    # An identity of the formula, so float64; both sides carry their own rounding, hence twice the bound.
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 16, generator=g).double(), torch.randn(8, 16, generator=g).double()
    base = nt_xent(z1, z2, 0.1)
    scales = torch.rand(8, 1, generator=g).double() * 10 + 0.1  # per-row positive scales
    tol = 2 * nt_xent_tol(torch.float64, 8, 16, 0.1, base.item())
    assert nt_xent(z1 * scales, z2 * 7.5, 0.1).item() == pytest.approx(base.item(), abs=tol)


def test_temperature_behaviour():
    n = 4
    z = torch.eye(n, 8)
    values = [nt_xent(z, z, tau).item() for tau in (0.05, 0.1, 0.5, 1.0, 100.0)]
    # Aligned positives: a sharper softmax rewards them more, so the loss rises with τ...
    assert all(a < b for a, b in zip(values, values[1:], strict=False))
    # ...towards uniform guessing among the 2n-1 candidates as τ → ∞. Not a rounding tolerance: at τ = 100
    # the loss is the limit minus (1/τ)(1 - 1/(2n-1)) + O(1/τ²) ≈ 0.0086, i.e. 0.44 % below log(2n-1).
    assert values[-1] == pytest.approx(math.log(2 * n - 1), rel=1e-2)
    # Anti-aligned positives: the opposite ordering.
    anti = [nt_xent(z, -z, tau).item() for tau in (0.1, 1.0, 100.0)]
    assert anti[0] > anti[1] > anti[2]


def test_symmetric_in_arguments_and_pair_order():
    # Symmetries of the formula, so float64: reordering rows changes the summation order (in float32 the
    # mean over 12 anchors alone may move by 11u ≈ 6.6e-7 relative), so each side gets its own bound.
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 5, generator=g).double(), torch.randn(6, 5, generator=g).double()
    perm = torch.randperm(6, generator=g)
    base = nt_xent(z1, z2, 0.2).item()
    tol = 2 * nt_xent_tol(torch.float64, 6, 5, 0.2, base)
    assert nt_xent(z2, z1, 0.2).item() == pytest.approx(base, abs=tol)
    assert nt_xent(z1[perm], z2[perm], 0.2).item() == pytest.approx(base, abs=tol)


def test_gradient_flows_and_is_finite():
    z1 = torch.randn(4, 6, requires_grad=True)
    z2 = torch.randn(4, 6, requires_grad=True)
    nt_xent(z1, z2, 0.1).backward()
    assert torch.isfinite(z1.grad).all() and z1.grad.abs().sum() > 0
    assert torch.isfinite(z2.grad).all() and z2.grad.abs().sum() > 0


def test_bfloat16_input_computed_in_float32():
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    out = nt_xent(z1.bfloat16(), z2.bfloat16(), 0.1)
    assert out.dtype == torch.float32
    # Upcasting inside must be the same float32 computation on the same (bf16-representable) values as
    # upcasting first: same kernels, same inputs, so the results are equal, not merely close.
    assert out.item() == nt_xent(z1.bfloat16().float(), z2.bfloat16().float(), 0.1).item()
    assert nt_xent(z1.double(), z2.double(), 0.1).dtype == torch.float64  # never downcast to float32


@pytest.mark.parametrize(
    "z1,z2,tau",
    [
        (torch.zeros(3, 4), torch.zeros(4, 4), 0.1),
        (torch.zeros(3), torch.zeros(3), 0.1),
        (torch.zeros(0, 4), torch.zeros(0, 4), 0.1),
        (torch.ones(3, 4), torch.ones(3, 4), 0.0),
    ],
)
def test_rejects_bad_input(z1, z2, tau):
    with pytest.raises(ValueError):
        nt_xent(z1, z2, tau)


def test_top1_retrieval():
    z = torch.eye(5)
    assert top1_retrieval(z, z) == 1.0
    assert top1_retrieval(z, z[[1, 0, 2, 3, 4]]) == pytest.approx(3 / 5)
    # Argmax is over cosine similarity: a long wrong key must not beat a short right one.
    keys = torch.tensor([[0.1, 0.0], [10.0, 10.0]])
    assert top1_retrieval(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), keys) == 1.0
    assert isinstance(top1_retrieval(z, z), float)
