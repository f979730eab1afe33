"""Batch gathering from the window cache, seeded samplers, and tensor iterators for the training loops.

Training reads only the cache memmaps (contract 2). A window length is a strided *view* of a memmap
(no copy), Shape: (S, K, n_windows, C, W); a whole batch of one modality is then a single NumPy fancy
index on that view — no per-sample Python loop, and only the touched pages are read from disk. This is
what keeps a 32-subject pre-training fold at a few hundred MB instead of the authors' eagerly augmented
tens of GB (method-spec D17).

Samplers draw index arrays only (from a NumPy ``Generator`` owned by the loop), so a whole epoch's order
and subject groups are fixed before any data is read: gathering can run ahead in a thread, and a resumed
run reproduces the same order from the restored generator state.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from physiosync.data.table import WindowTable
from physiosync.errors import DataFormatError

Batch = dict[str, np.ndarray]


def make_window_view(signals: np.ndarray, n_windows: int, n_times: int) -> np.ndarray:
    """Strided view of a trial-signal array as non-overlapping windows, without copying.

    Why a view: slicing ``[..., :n_windows * n_times]`` and reshaping would copy the whole memmap when the
    trial is longer than a whole number of windows.

    Args:
        signals: Shape: (S, K, C, n_samples), e.g. a cache memmap.
        n_windows: Windows per trial.
        n_times: Samples per window.

    Returns:
        Read-only view, Shape: (S, K, n_windows, C, n_times).
    """
    n_subjects, n_trials, n_chans, n_samples = signals.shape
    if n_windows * n_times > n_samples:
        raise DataFormatError(
            getattr(signals, "filename", "<signals>"), "n_samples", n_samples,
            f">= {n_windows} windows x {n_times} samples",
        )
    s_sub, s_trial, s_chan, s_time = signals.strides
    return np.lib.stride_tricks.as_strided(
        signals,
        shape=(n_subjects, n_trials, n_windows, n_chans, n_times),
        strides=(s_sub, s_trial, n_times * s_time, s_chan, s_time),
        writeable=False,
    )


def window_views(cache: Any, window_s: float) -> dict[str, np.ndarray]:
    """One :func:`make_window_view` per modality of the cache's contract, for ``window_s`` windows."""
    n_windows = cache.n_windows(window_s)
    return {
        spec.name: make_window_view(cache.signals(spec.name), n_windows, spec.n_times(window_s))
        for spec in cache.contract.modalities
    }


def split_moments(moments: np.ndarray, n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Stimulus moment ids → (trial, window) (contract 2: ``moment = trial * n_windows + window``)."""
    moments = np.asarray(moments, dtype=np.int64)
    return moments // n_windows, moments % n_windows


def gather_group_batch(
    cache: Any, window_s: float, moments: np.ndarray, idx_a: np.ndarray, idx_b: np.ndarray
) -> Batch:
    """Windows of two subject groups at the same stimulus moments (LS-TCL / CM-CA batch, §4.1).

    Args:
        cache: A ``WindowCache``.
        window_s: Window length in seconds.
        moments: Stimulus moment ids, Shape: (B,).
        idx_a: Subject indices (into ``cache.subjects``) of group 1, Shape: (B, N).
        idx_b: Subject indices of group 2, Shape: (B, N).

    Returns:
        modality -> float32 array, Shape: (B, 2, N, C, T); ``[:, 0]`` is group 1, ``[:, 1]`` group 2.
    """
    trial, window = split_moments(moments, cache.n_windows(window_s))
    subjects = np.stack([np.asarray(idx_a), np.asarray(idx_b)], axis=1)  # (B, 2, N)
    t = trial[:, None, None]
    w = window[:, None, None]
    return {m: np.ascontiguousarray(v[subjects, t, w]) for m, v in window_views(cache, window_s).items()}


def gather_pairs(
    cache: Any,
    window_s: float,
    subject_a: np.ndarray,
    moment_a: np.ndarray,
    subject_b: np.ndarray,
    moment_b: np.ndarray,
) -> Batch:
    """Pairs of single windows in the unified layout with N = 1 (``augviews`` and ``official`` pairing).

    ``augviews`` passes the same (subject, moment) twice (two augmentations make the views); ``official``
    passes unrelated samples (the authors' random pairing, D2).

    Args:
        subject_a, moment_a, subject_b, moment_b: Shape: (B,) each.

    Returns:
        modality -> float32 array, Shape: (B, 2, 1, C, T).
    """
    n_windows = cache.n_windows(window_s)
    ta, wa = split_moments(moment_a, n_windows)
    tb, wb = split_moments(moment_b, n_windows)
    s = np.stack([subject_a, subject_b], axis=1)[:, :, None]  # (B, 2, 1)
    t = np.stack([ta, tb], axis=1)[:, :, None]
    w = np.stack([wa, wb], axis=1)[:, :, None]
    return {m: np.ascontiguousarray(v[s, t, w]) for m, v in window_views(cache, window_s).items()}


def gather_rows(cache: Any, window_s: float, table: WindowTable, rows: np.ndarray) -> Batch:
    """Windows for rows of a ``WindowTable`` (fine-tuning / prediction).

    Args:
        table: The table of ``window_s`` windows the rows index.
        rows: Row indices, Shape: (B,).

    Returns:
        modality -> float32 array, Shape: (B, C, T).
    """
    if abs(table.window_s - window_s) > 1e-9:
        raise ValueError(f"table describes {table.window_s} s windows, asked for {window_s} s")
    rows = np.asarray(rows, dtype=np.int64)
    s, t, w = table.subject[rows], table.trial[rows], table.window[rows]
    return {m: np.ascontiguousarray(v[s, t, w]) for m, v in window_views(cache, window_s).items()}


# --------------------------------------------------------------------------------------------------
# samplers (index arrays only)


def sample_index_batches(
    items: np.ndarray,
    batch_size: int,
    generator: np.random.Generator | None,
    max_batches: int | None = None,
    drop_last: bool = True,
) -> list[np.ndarray]:
    """Split a (shuffled) set of unique ids into batches; no id appears twice in a batch (D24).

    Why unique ids suffice for D24: augmentation is applied on the fly, so one moment is one row; there are
    no augmented copies that could land in the same batch as false negatives.

    Args:
        items: Unique ids (moments, table rows, or flat sample ids), Shape: (n,).
        batch_size: Ids per batch. If ``n < batch_size`` one batch of all ids is returned.
        generator: Shuffles the ids; ``None`` keeps their order (prediction).
        max_batches: Cap on the number of batches (``steps_per_epoch``).
        drop_last: Drop a final incomplete batch (contrastive batches keep a fixed number of negatives);
            otherwise only a final batch of one id is dropped (BatchNorm cannot train on it).
    """
    items = np.asarray(items, dtype=np.int64)
    if len(np.unique(items)) != len(items):
        raise ValueError("sampler ids must be unique (a duplicate would be its own false negative)")
    order = generator.permutation(items) if generator is not None else items
    if len(order) == 0:
        return []
    if len(order) <= batch_size:
        batches = [order]
    else:
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        if drop_last and len(batches[-1]) < batch_size:
            batches = batches[:-1]
        elif len(batches[-1]) == 1:
            batches = batches[:-1]
    return batches[:max_batches] if max_batches is not None else batches


# --------------------------------------------------------------------------------------------------
# memory


# Windows gathered between two page releases. The kernel maps ~64 KiB around every faulting page, so one
# DEAP window (32 channel rows far apart in the file) maps ~2.7 MB: 64 windows ≈ 0.17 GB (measured).
RELEASE_EVERY_WINDOWS = 64


def release_pages(cache: Any) -> None:
    """Drop the cache memmaps' pages from this process's resident set (data stay valid).

    Why: every page a random batch touches stays mapped, so after ~50 random pre-training batches the
    resident set has grown by the whole memmap (1.3 GB of DEAP EEG, measured) although nothing is held. ``MADV_DONTNEED`` on a
    read-only shared file mapping only unmaps; the next access re-faults from the OS page cache. A no-op
    where ``madvise`` is unavailable or the signals are plain arrays (tests).
    """
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None:
        return
    for spec in cache.contract.modalities:
        handle = getattr(cache.signals(spec.name), "_mmap", None)
        if handle is not None:
            try:
                handle.madvise(advice)
            except (OSError, ValueError):  # closed map or unsupported platform: memory only, never fatal
                return


def release_interval(windows_per_step: int) -> int:
    """Steps between :func:`release_pages` calls for batches of ``windows_per_step`` windows."""
    return max(1, RELEASE_EVERY_WINDOWS // max(1, windows_per_step))


# --------------------------------------------------------------------------------------------------
# tensors


def to_tensors(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    """NumPy batch → contiguous float32 tensors on ``device`` (pinned + non-blocking copy for CUDA).

    Shape:
        batch[mod]: any (e.g. (B, 2, N, C, T) or (B, C, T)); each tensor keeps its array's shape.
    """
    out = {}
    for m, a in batch.items():
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
        if device.type == "cuda":
            t = t.pin_memory().to(device, non_blocking=True)
        elif device.type != "cpu":
            t = t.to(device)
        out[m] = t
    return out


def iter_tensor_batches(
    gather: Callable[[Any], Batch], plan: Iterable[Any], device: torch.device, prefetch: int = 2
) -> Iterator[dict[str, torch.Tensor]]:
    """Yield ``to_tensors(gather(item))`` for each planned item, gathering ahead in one thread.

    The plan (index arrays) is computed by the caller before iteration, so the background thread draws
    no random numbers and the output is identical with or without prefetching. NumPy fancy indexing
    releases the GIL, so reading the next batch overlaps with the forward/backward pass.

    Args:
        gather: Item → NumPy batch (e.g. a ``functools.partial`` of :func:`gather_group_batch`).
        plan: Items in order (any objects ``gather`` accepts).
        device: Where the tensors go.
        prefetch: Batches read ahead (0 = synchronous).
    """
    items = list(plan)
    if prefetch <= 0:
        for item in items:
            yield to_tensors(gather(item), device)
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = [pool.submit(gather, it) for it in items[:prefetch]]
        nxt = prefetch
        for i in range(len(items)):
            batch = futures[i].result()
            if nxt < len(items):
                futures.append(pool.submit(gather, items[nxt]))
                nxt += 1
            futures[i] = None  # type: ignore[call-overload]  # release the array early
            yield to_tensors(batch, device)


class TableWindows:
    """Array-like view of the cache windows of some table rows, read on demand (never all in memory).

    What ``train_eegnet``/``predict_proba`` (``compare``'s ``eegnet`` row) need from ``x``: ``ndim``,
    ``shape``, ``len`` and indexing by an index array or slice. Full DEAP at 5 s is 1.3 GB of EEG; reading
    per batch keeps RSS at one batch.

    Shape: indexing returns (B, n_chans, n_times) float32.
    """

    def __init__(self, cache: Any, modality: str, table: WindowTable, rows: np.ndarray) -> None:
        self.cache, self.modality, self.table = cache, modality, table
        self.rows = np.asarray(rows, dtype=np.int64)
        spec = cache.contract.modality(modality)
        self.shape = (len(self.rows), spec.n_chans, spec.n_times(table.window_s))
        self.ndim = 3

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: Any) -> np.ndarray:
        r = self.rows[idx]
        t = self.table
        return self.cache.get_windows(self.modality, t.window_s, t.subject[r], t.trial[r], t.window[r])
