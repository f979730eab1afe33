"""EEGNet-8,2: shapes, constraints, learning and determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physiosync.baselines.eegnet import EEGNet, predict_proba, train_eegnet


@pytest.mark.parametrize(("n_chans", "n_times", "n_out"), [(32, 128, 4), (32, 640, 20), (14, 128, 4), (4, 16, 1)])
def test_shapes(n_chans: int, n_times: int, n_out: int) -> None:
    torch.manual_seed(0)
    model = EEGNet(n_chans, n_times, n_classes=4)
    x = torch.randn(3, n_chans, n_times)
    assert model.n_times_out == n_out  # T // 32 with the paper's pools; shrunk pools keep >= 1
    assert model.forward_features(x).shape == (3, 16 * n_out)
    assert model(x).shape == (3, 4)
    assert model.temporal.kernel_size == (1, 64)  # sfreq / 2 at 128 Hz


def test_wrong_input_shape_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(B, 32, 128\)"):
        EEGNet(32, 128, 2)(torch.randn(2, 14, 128))


def test_max_norm_constraints_hold() -> None:
    model = EEGNet(8, 128, 2)
    with torch.no_grad():
        model.spatial.weight.mul_(100.0)
        model.classifier.weight.mul_(100.0)
    model.apply_max_norm()
    # torch.renorm scales a row by max_norm / (norm + 1e-7). Its float32 norm and the one measured here each
    # err by ≤ (n/2 + 1)u relative (u = 2^-24; n = 8 spatial taps, 64 dense inputs), so a clipped row may
    # exceed max_norm by ≤ (n + 3)u ≤ 4e-6 relative: 1e-5 bounds that, and any real failure to clip is ×100.
    assert model.spatial.weight.flatten(1).norm(dim=1).max() <= 1.0 + 1e-5
    assert model.classifier.weight.norm(dim=1).max() <= 0.25 + 1e-5


def test_one_optimisation_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = EEGNet(14, 128, 2, dropout=0.0)
    x = torch.randn(32, 14, 128)
    y = torch.randint(0, 2, (32,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    before = loss_fn(model(x), y)
    opt.zero_grad()
    before.backward()
    opt.step()
    model.apply_max_norm()
    after = loss_fn(model(x), y)
    assert after.item() < before.item()


def class_signal_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 windows carry a 10 Hz rhythm on the first channels; class 0 is noise only."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    x = rng.standard_normal((n, 4, 128)).astype(np.float32)
    t = np.arange(128) / 128.0
    x[y == 1, :2] += 1.5 * np.sin(2 * np.pi * 10 * t).astype(np.float32)
    return x, y


def test_train_is_deterministic_for_a_seed_and_learns() -> None:
    x, y = class_signal_data(96, seed=0)
    rng_state = torch.get_rng_state()
    a = train_eegnet(x, y, epochs=4, batch_size=16, lr=5e-3, seed=7)
    assert torch.equal(torch.get_rng_state(), rng_state)  # caller's RNG untouched
    b = train_eegnet(x, y, epochs=4, batch_size=16, lr=5e-3, seed=7)
    c = train_eegnet(x, y, epochs=4, batch_size=16, lr=5e-3, seed=8)
    pa, pb, pc = (predict_proba(m, x) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert not np.array_equal(pa, pc)
    assert a.train_losses == b.train_losses
    assert a.train_losses[-1] < a.train_losses[0]
    # float32 softmax: each of the K = 2 probabilities is within ~3u of exact (u = 2^-24) and numpy's float32
    # row sum adds one rounding, so rows sum to 1 within ~7u ≈ 4e-7.
    np.testing.assert_allclose(pa.sum(axis=1), 1.0, rtol=1e-6)
    x_test, y_test = class_signal_data(64, seed=1)
    assert (predict_proba(a, x_test).argmax(axis=1) == y_test).mean() > 0.8


def test_predict_proba_is_batch_independent_and_restores_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    # Batching is a property of the code, not of float32: run it in float64 (model and inputs), where
    # different conv/GEMM blockings for 3 vs 10 windows reorder sums by ~1e-16 relative, so 1e-12 is safe.
    # (In float32 the same reordering may move probabilities by a few ulps depending on the CPU's kernels.)
    import physiosync.baselines.eegnet as eegnet_mod

    monkeypatch.setattr(eegnet_mod, "_to_tensor", lambda a, dev: torch.from_numpy(np.asarray(a, np.float64)).to(dev))
    torch.manual_seed(0)
    model = EEGNet(4, 128, 3).double()
    model.train()
    x = np.random.default_rng(0).standard_normal((10, 4, 128))
    small, whole = predict_proba(model, x, batch_size=3), predict_proba(model, x, batch_size=10)
    assert small.dtype == np.float64
    np.testing.assert_allclose(small, whole, rtol=1e-12, atol=1e-12)
    assert model.training
