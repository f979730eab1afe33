"""On-the-fly pre-training augmentation: the six versions of method-spec §4.4, drawn per window.

The authors materialise all six versions of every training window eagerly in float64 (7–15 GB per fold,
D17). Here each window of a batch independently gets one version chosen uniformly, which is the same
distribution over (window, version) pairs without ever holding the 6× dataset: the only extra memory is one
Gaussian noise tensor the size of the batch. Everything is vectorised on the device of the input and driven
by an explicit :class:`torch.Generator`, so a seed fixes the result (D18).

Versions (indices used throughout):

====  ===========================================
0     x (identity)
1     α·x,  α ~ U(scale_low)   (0.7–0.8)
2     α·x,  α ~ U(scale_high)  (1.2–1.3)
3     x + g·n
4     α·x + g·n, α ~ U(scale_low)
5     α·x + g·n, α ~ U(scale_high)
====  ===========================================

with n ~ N(0, 1) of the window's shape and g = sqrt(10^(−SNR/10) · var(s) / var(n)), where ``s`` is the
signal the noise is added to (x, or α·x for versions 4–5) and both variances are taken over the whole
window (all channels together), so every noisy version has exactly the configured SNR relative to its own
signal. One α per window (shared by its channels).
"""

from __future__ import annotations

import torch

from physiosync.config import AugmentConfig

N_VERSIONS = 6
_SCALE_LOW = (1, 4)  # versions scaled by α ~ U(scale_low)
_SCALE_HIGH = (2, 5)  # versions scaled by α ~ U(scale_high)
_NOISY = (3, 4, 5)  # versions with additive Gaussian noise


def _check_input(x: torch.Tensor, generator: torch.Generator) -> None:
    if x.ndim < 2:
        raise ValueError(f"expected a batch of windows (..., C, T), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point batch, got {x.dtype}")
    if generator.device.type != x.device.type:
        raise ValueError(
            f"generator is on {generator.device}, batch on {x.device}; create it on the batch's device"
        )


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator,
    cfg: AugmentConfig,
    versions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Replace every window of ``x`` by one of the six §4.4 versions, chosen independently per window.

    Call it once per modality with the same generator: the draws are then independent between EEG and
    PPS, as in the authors' code (same-moment EEG/PPS rows get independent α and noise).

    Args:
        x: Batch of windows with any leading shape; each (C, T) slice is one window.
        generator: Torch generator on ``x``'s device; the only randomness used.
        cfg: Scale ranges, SNR in dB and the ``enabled`` switch (disabled returns ``x`` unchanged).
        versions: Optional fixed version index (0–5) per window instead of a uniform draw, e.g. to share
            the version between modalities or for tests.

    Shape:
        x: (..., C, T); versions: x.shape[:-2] (int); returns a tensor of x's shape, dtype and device.

    Returns:
        A new tensor (``x`` itself is never modified).
    """
    _check_input(x, generator)
    if not cfg.enabled:
        return x
    lead = x.shape[:-2]
    dev = x.device
    if versions is None:
        versions = torch.randint(0, N_VERSIONS, lead, generator=generator, device=dev)
    else:
        versions = torch.as_tensor(versions, device=dev).long().expand(lead)
        if versions.numel() and (int(versions.min()) < 0 or int(versions.max()) >= N_VERSIONS):
            raise ValueError(f"versions must lie in 0..{N_VERSIONS - 1}")
    # One uniform per window serves both ranges: only one of them is used for any given window.
    u = torch.rand(lead, generator=generator, device=dev, dtype=torch.float32)
    lo0, lo1 = cfg.scale_low
    hi0, hi1 = cfg.scale_high
    alpha = torch.ones(lead, device=dev, dtype=torch.float32)
    is_low = (versions == _SCALE_LOW[0]) | (versions == _SCALE_LOW[1])
    is_high = (versions == _SCALE_HIGH[0]) | (versions == _SCALE_HIGH[1])
    alpha = torch.where(is_low, lo0 + (lo1 - lo0) * u, alpha)
    alpha = torch.where(is_high, hi0 + (hi1 - hi0) * u, alpha)
    is_noisy = versions >= _NOISY[0]

    signal = x * alpha.to(x.dtype)[..., None, None]  # (..., C, T)
    noise = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype)
    # Variances over the whole window (channels and time together), population form for both so the
    # ratio is exact; var(n) is the *drawn* noise's variance, which makes the SNR exact per window.
    var_s = signal.var(dim=(-2, -1), unbiased=False)
    var_n = noise.var(dim=(-2, -1), unbiased=False).clamp_min(torch.finfo(x.dtype).tiny)
    gain = torch.sqrt(10.0 ** (-cfg.snr_db / 10.0) * var_s / var_n)
    gain = torch.where(is_noisy, gain, torch.zeros_like(gain))
    return signal + gain[..., None, None] * noise


def augment_version(
    x: torch.Tensor, version: int, generator: torch.Generator, cfg: AugmentConfig
) -> torch.Tensor:
    """Apply one fixed version (0–5) to every window of ``x`` (fresh α and noise per window).

    Args:
        x: Batch of windows.
        version: Index from the module table.
        generator: Torch generator on ``x``'s device.
        cfg: Augmentation settings (``enabled`` is ignored: asking for a version means wanting it).

    Shape:
        x: (..., C, T); returns x's shape.
    """
    if not 0 <= int(version) < N_VERSIONS:
        raise ValueError(f"version must lie in 0..{N_VERSIONS - 1}, got {version}")
    forced = cfg.model_copy(update={"enabled": True})
    versions = torch.full(x.shape[:-2], int(version), dtype=torch.long, device=x.device)
    return augment_batch(x, generator, forced, versions=versions)
