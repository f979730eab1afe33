"""The bf16 optimiser step: chunked fused Adam from bf16 gradients equals the plain path bit for bit.

The plain bf16 path (``Bf16Matmuls`` without an optimiser) casts each bf16 weight gradient to a float32
``.grad``, runs ``optimizer.step()`` and refreshes every copy. The attached path keeps the gradients in
bf16 and runs the same fused kernel chunk by chunk. Both round the same bf16 GEMM output once to float32
and apply the same element-wise update, so weights, copies and optimiser state must be *identical*, not
merely close — any tolerance here would hide a wrong chunk offset or a skipped step.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from physiosync.training import bf16_adam
from physiosync.training.precision import Bf16Matmuls, Fp32, mixed_precision

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    """A shared layer (used twice per step), a frozen layer, a layer used only sometimes, a norm."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(13, 11)
        self.shared = nn.Linear(11, 11)
        self.frozen = nn.Linear(11, 11)
        self.frozen.weight.requires_grad_(False)
        self.sometimes = nn.Linear(11, 5, bias=False)
        self.norm = nn.LayerNorm(11)
        self.out = nn.Linear(11, 3)

    def forward(self, x: torch.Tensor, use_sometimes: bool) -> torch.Tensor:
        h = self.shared(torch.relu(self.shared(self.a(x))))
        h = self.norm(self.frozen(h))
        y = self.out(h)
        if use_sometimes:
            y = y + self.sometimes(h)[:, :3]
        return y


def make(chunk: int | None, attach: bool, decoupled: bool = False):
    torch.manual_seed(0)
    net = Net()
    groups = [{"params": [p for n, p in net.named_parameters() if not n.startswith("out")]},
              {"params": list(net.out.parameters()), "lr": 3e-3, "weight_decay": 0.0}]
    opt = torch.optim.Adam(groups, lr=1e-2, weight_decay=1e-3, fused=True, decoupled_weight_decay=decoupled)
    mixed = Bf16Matmuls(net, opt if attach else None)
    if attach and chunk is not None:
        mixed._adam = bf16_adam.ChunkedAdam(opt, torch.device("cpu"), chunk)
    return net, opt, mixed


def train(net, opt, mixed, attach: bool, steps: int = 5) -> list[float]:
    gen = torch.Generator().manual_seed(1)
    losses = []
    for i in range(steps):
        x = torch.randn(9, 13, generator=gen)
        with mixed:
            loss = net(x, use_sometimes=i % 2 == 0).square().mean()
        if attach:
            mixed.zero_grad()
            loss.backward()
            mixed.step()
        else:
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            mixed.refresh()
        losses.append(float(loss.detach()))
    return losses


def assert_same(a, b) -> None:
    (net_a, opt_a, mixed_a), (net_b, opt_b, mixed_b) = a, b
    for (name, pa), pb in zip(net_a.named_parameters(), net_b.parameters(), strict=True):
        assert torch.equal(pa, pb), name
    for ca, cb in zip(mixed_a.copies, mixed_b.copies, strict=True):
        assert torch.equal(ca, cb)
    sa, sb = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        for key in sa[k]:
            assert torch.equal(sa[k][key], sb[k][key]), (k, key)


@pytest.mark.parametrize("chunk", [64, 192, None])  # weights split across calls / several per call / default
@pytest.mark.parametrize("decoupled", [False, True])  # Adam (L2) and AdamW kernels
def test_attached_step_equals_the_plain_path_bit_for_bit(chunk, decoupled):
    plain = make(chunk, attach=False, decoupled=decoupled)
    fast = make(chunk, attach=True, decoupled=decoupled)
    assert fast[2].side is not None and plain[2].side is None
    assert train(*plain, attach=False) == train(*fast, attach=True)
    assert_same(plain, fast)
    net = fast[0]
    assert net.shared.weight.grad is not None  # used twice: float32 .grad holds the sum (bf16 part folded in)
    assert net.a.weight.grad is None  # its only gradient lived in bf16 and was consumed by the step
    assert net.frozen.weight not in fast[1].state  # frozen: never stepped, no state
    assert torch.equal(net.frozen.weight, plain[0].frozen.weight)


def test_state_dict_round_trip_and_a_replaced_state_rebuild_the_chunk_plan():
    plain = make(64, attach=False)
    fast = make(64, attach=True)
    train(*plain, attach=False, steps=3)
    train(*fast, attach=True, steps=3)
    # a checkpoint of the fast path loads into a fresh attached context (new state tensors: plan rebuilt)
    saved = copy.deepcopy(fast[1].state_dict())
    fast[1].load_state_dict(saved)
    fast[2].refresh()
    assert train(*plain, attach=False, steps=3) == train(*fast, attach=True, steps=3)
    assert_same(plain, fast)


def test_zero_grad_forgets_a_backward_that_was_not_stepped():
    plain = make(None, attach=False)
    fast = make(None, attach=True)
    net, _, mixed = fast
    with mixed:
        loss = net(torch.randn(4, 13), use_sometimes=True).sum()
    loss.backward()  # never stepped: must not leak into the next step
    assert any(mixed.side.filled)
    mixed.zero_grad()
    assert not any(mixed.side.filled)
    assert train(*plain, attach=False, steps=2) == train(*fast, attach=True, steps=2)
    assert_same(plain, fast)


def test_which_optimisers_take_the_chunked_path():
    net = Net()
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Linear)]
    assert bf16_adam.supports(torch.optim.Adam(net.parameters(), fused=True), weights)
    assert not bf16_adam.supports(torch.optim.Adam(net.parameters(), foreach=True), weights)
    assert not bf16_adam.supports(torch.optim.Adam(net.parameters(), fused=True, amsgrad=True), weights)
    assert not bf16_adam.supports(torch.optim.SGD(net.parameters(), lr=0.1), weights)
    assert not bf16_adam.supports(torch.optim.Adam(net.out.parameters(), fused=True), weights)  # not all owned
    # an unsupported optimiser still trains: .grad path, optimizer.step(), refresh
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    mixed = Bf16Matmuls(net, opt)
    assert mixed.side is None
    before = net.a.weight.detach().clone()
    with mixed:
        loss = net(torch.randn(4, 13), use_sometimes=False).sum()
    mixed.zero_grad()
    loss.backward()
    mixed.step()
    assert not torch.equal(before, net.a.weight)
    assert torch.equal(mixed.copies[0], net.a.weight.detach().bfloat16())


def test_chunk_must_keep_the_kernels_vector_units():
    opt = torch.optim.Adam(Net().parameters(), fused=True)
    for bad in (0, 7, 100):
        with pytest.raises(ValueError, match="multiple of 64"):
            bf16_adam.ChunkedAdam(opt, torch.device("cpu"), bad)


def test_step_without_an_optimiser_is_a_clear_error():
    net = Net()
    for ctx in (mixed_precision(net, "bf16"), mixed_precision(net, "fp32")):
        with pytest.raises(ValueError, match="no optimiser"):
            ctx.step()
        with pytest.raises(ValueError, match="no optimiser"):
            ctx.zero_grad()


def test_fp32_context_steps_its_optimiser():
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    opt = torch.optim.Adam(net.parameters(), lr=0.1)
    ctx = mixed_precision(net, "fp32", opt)
    assert isinstance(ctx, Fp32)
    before = net.weight.detach().clone()
    net(torch.randn(3, 4)).sum().backward()
    ctx.step()
    assert not torch.equal(before, net.weight)
    ctx.zero_grad()
    assert net.weight.grad is None
