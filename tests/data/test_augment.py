import pytest
import torch

from physiosync.config import AugmentConfig
from physiosync.data.augment import N_VERSIONS, augment_batch, augment_version

CFG = AugmentConfig()


def make_windows(shape=(40, 4, 512), seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Channel-dependent means and scales, like real windows; the differing means make "variance over the
    # whole window" differ from the average per-channel variance, so the SNR tests can tell them apart.
    n_chans = shape[-2]
    scale = torch.linspace(0.5, 3.0, n_chans)[:, None]
    offset = torch.linspace(-2.0, 2.0, n_chans)[:, None] + 0.3
    x = torch.randn(shape, generator=g) * scale + offset
    return x.float()


def gen(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def fit_alpha(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Least-squares α per window for out ≈ α·x + noise (noise independent of x)."""
    return (out * x).sum(dim=(-2, -1)) / (x * x).sum(dim=(-2, -1))


def snr_db(signal: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    var = lambda t: t.var(dim=(-2, -1), unbiased=False)  # noqa: E731
    return 10 * torch.log10(var(signal) / var(noise))


def test_keeps_shape_dtype_and_input():
    x = make_windows((3, 2, 2, 5, 64))  # (B, 2, N, C, T) pre-training layout
    before = x.clone()
    out = augment_batch(x, gen(), CFG)
    assert out.shape == x.shape and out.dtype == torch.float32 and out.device == x.device
    assert torch.equal(x, before)


def test_identity_version_returns_x():
    x = make_windows()
    assert torch.equal(augment_version(x, 0, gen(), CFG), x)


@pytest.mark.parametrize("version,lo,hi", [(1, 0.7, 0.8), (2, 1.2, 1.3)])
def test_scale_versions_stay_in_range(version, lo, hi):
    x = make_windows((500, 3, 32))
    ratio = augment_version(x, version, gen(1), CFG) / x
    per_window = ratio[..., :1, :1]
    # fl(fl(α·x)/x) is α within 2 roundings (≤ EPS32 relative): rtol=1e-5 passes any float32 CPU and is
    # still 1e3 below the spread of two different α draws (≥ 1e-2 typically).
    assert torch.allclose(ratio, per_window.expand_as(ratio), rtol=1e-5)  # one α per window, all channels
    alpha = per_window.flatten()
    # α = lo + (hi - lo)·u is rounded once or twice in float32, and the ratio adds ≤ EPS32 × 1.3: < 1e-6.
    assert alpha.min() >= lo - 1e-6 and alpha.max() <= hi + 1e-6
    assert alpha.max() - alpha.min() > 0.8 * (hi - lo)  # really drawn across the range
    assert alpha.unique().numel() > 400  # independent per window


def test_noise_version_hits_snr_exactly():
    x = make_windows((20, 4, 2048))
    out = augment_version(x, 3, gen(2), CFG)
    measured = snr_db(x, out - x)
    # The gain makes the SNR exact up to float32 rounding: out - x recovers g·n to ≲ EPS32·|x|/|g·n| < 1e-6
    # relative per sample, and the 8192-term variances err by ~log2(8192)·EPS32/2 ≈ 1e-6; 10·log10 turns
    # a relative error r into 4.3·r dB, so ~1e-5 dB. atol 1e-3 dB: 100× that, still 1e3 below a wrong gain.
    assert torch.allclose(measured, torch.full_like(measured, CFG.snr_db), atol=1e-3)
    noise = out - x
    assert noise.mean().abs() < 0.05  # zero-mean Gaussian, not a shift


@pytest.mark.parametrize("version,lo,hi", [(4, 0.7, 0.8), (5, 1.2, 1.3)])
def test_scaled_noisy_versions(version, lo, hi):
    x = make_windows((20, 4, 4096))
    out = augment_version(x, version, gen(3), CFG)
    alpha = fit_alpha(out, x)
    assert alpha.min() > lo - 0.01 and alpha.max() < hi + 0.01
    signal = alpha[:, None, None] * x
    measured = snr_db(signal, out - signal)
    # Sampling tolerances, not rounding: α is fitted from 16384 samples whose noise correlates with x by
    # chance (α error ~ sqrt(10^-0.5 / 16384) ≈ 4e-3 at 5 dB), which moves the measured SNR by ~0.03 dB.
    # The draws are fixed by the seed; float32 rounding moves these statistics by ~1e-6, not 1e-2.
    assert torch.allclose(measured, torch.full_like(measured, CFG.snr_db), atol=0.1)


def test_snr_follows_config():
    x = make_windows((8, 2, 4096))
    cfg = AugmentConfig(snr_db=20.0)
    out = augment_version(x, 3, gen(), cfg)
    # As in test_noise_version_hits_snr_exactly, at 20 dB the recovered noise loses ~EPS32·|x|/|g·n| ≈ 3e-6
    # relative per sample: ~1e-5 dB, so atol 1e-3 dB is float32 rounding with 100× headroom.
    assert torch.allclose(snr_db(x, out - x), torch.tensor(20.0), atol=1e-3)


def classify(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Recover which of the six versions produced each window (large windows make this unambiguous)."""
    alpha = fit_alpha(out, x)
    residual = (out - alpha[:, None, None] * x).pow(2).mean(dim=(-2, -1)) / x.pow(2).mean(dim=(-2, -1))
    # Noise-free versions leave only float32 rounding, residual ~EPS32² ≈ 1e-14; noisy ones ~0.1 (5 dB):
    # 1e-6 lies decades from both on any CPU.
    noisy = residual > 1e-6
    kind = torch.where(alpha < 0.9, 1, torch.where(alpha > 1.1, 2, 0))  # 0 none, 1 low, 2 high
    return torch.where(noisy, torch.where(kind == 0, 3, kind + 3), kind)


def test_versions_uniform_per_window():
    x = make_windows((1800, 2, 256))
    versions = classify(augment_batch(x, gen(4), CFG), x)
    freq = torch.bincount(versions, minlength=N_VERSIONS).float() / versions.numel()
    assert torch.allclose(freq, torch.full((N_VERSIONS,), 1 / N_VERSIONS), atol=0.03)


def test_fixed_versions_argument():
    x = make_windows((12, 2, 256))
    wanted = torch.arange(12) % N_VERSIONS
    assert torch.equal(classify(augment_batch(x, gen(), CFG, versions=wanted), x), wanted)


def test_deterministic_for_seed():
    x = make_windows((16, 3, 128))
    assert torch.equal(augment_batch(x, gen(7), CFG), augment_batch(x, gen(7), CFG))
    assert not torch.equal(augment_batch(x, gen(7), CFG), augment_batch(x, gen(8), CFG))


def test_consecutive_calls_are_independent():
    # EEG and PPS use the same generator one after the other: their draws must differ.
    x = make_windows((16, 3, 128))
    g = gen(9)
    assert not torch.equal(augment_batch(x, g, CFG), augment_batch(x, g, CFG))


def test_disabled_returns_input():
    x = make_windows((4, 2, 32))
    assert augment_batch(x, gen(), AugmentConfig(enabled=False)) is x


def test_flat_window_gets_no_nan():
    x = torch.zeros(3, 2, 16)
    out = augment_version(x, 5, gen(), CFG)
    assert torch.isfinite(out).all() and torch.equal(out, x)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        augment_batch(torch.zeros(5), gen(), CFG)
    with pytest.raises(ValueError):
        augment_batch(torch.zeros(2, 3, 4, dtype=torch.long), gen(), CFG)
    with pytest.raises(ValueError):
        augment_version(torch.zeros(2, 3, 4), 6, gen(), CFG)
