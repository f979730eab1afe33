"""Signal preprocessing (method-spec §2): one :class:`SubjectRecording` in, float32 stimulus arrays out.

What this module owns, chosen by the dataset *facts* (``data/datasets/<name>.yaml``), never by its name:

- ``baseline_layout: prefix`` (DEAP, §2.1–§2.2): the baseline is the first seconds of every trial array; a
  per-second baseline template (the mean of the 1 s pre-trial windows, per channel and sample position) is
  subtracted from every second of the stimulus; EEG z-scored *per time point across channels* over
  non-zero values only; the peripheral signal left in its units, then the optional peripheral
  normalisation (D23).
- ``baseline_layout: separate`` (DREAMER, §2.3–§2.4): every trial has its own baseline recording; any
  modality whose rate differs from ``target_sfreq`` (DREAMER's 256 Hz ECG) resampled with an anti-aliased
  polyphase filter so its second ``w`` covers EEG second ``w``; each trial's own baseline template; windows
  w0..w59 of the first (or last, ``stimulus_segment: first_or_last``) 60 s; EEG z-scored as above; the
  peripheral signal normalised per channel over time.
- The authors' data-changing quirks as switches (§7: D1, D3, D8, D13), resolved once into a
  :class:`PreprocessPlan` whose dict goes into the cache hash; a switch counts only for a dataset whose
  facts list it under ``quirks``.

Every function is vectorised over trials (and windows); the only Python loops run over trials or clips,
never over samples. Because baseline removal is per second and normalisation is per time point (or per
trial/subject), every window length is a plain view of the stored 60 s array (§2.1 "important
consequence"), which is what lets the cache store one copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from typing import Any

import numpy as np

from physiosync.config import PreprocessConfig, TaskConfig, resolve_preprocess
from physiosync.data.facts import DatasetFacts, dataset_facts
from physiosync.data.labels import Task, dataset_tasks, make_labels
from physiosync.data.recording import SubjectRecording
from physiosync.errors import DataFormatError

TARGET_SFREQ = 128  # every prepared modality is at 128 Hz (method-spec conventions)
WINDOW = 128  # samples of one 1 s window at TARGET_SFREQ; baseline templates are one window long
STIMULUS_S = 60  # seconds of stimulus kept per trial of DEAP and DREAMER (facts: stimulus_s)
N_SAMPLES = STIMULUS_S * TARGET_SFREQ  # 7680 samples per prepared trial of DEAP and DREAMER


@dataclass(frozen=True)
class PreprocessPlan:
    """The fully resolved preprocessing of one dataset (what the cache hash covers).

    Quirks that cannot affect a dataset (not listed under ``quirks`` in its facts) are resolved to
    ``False`` for it, so toggling a DREAMER switch does not invalidate a DEAP cache.

    Attributes:
        dataset: A registered dataset name; its facts (:func:`physiosync.data.facts.dataset_facts`) say how
            to preprocess it.
        four_tie_bug: D8, DEAP ties at the threshold relabelled LALV.
        ecg_from_eeg_bug: D1, DREAMER "ECG" = baseline-corrected EEG AF3/F7 minus the ECG template.
        baseline_bug: D3, DREAMER running, never-reset baseline accumulator.
        window_bug: D13, DREAMER duplicated first window and dropped last second.
        segment: "first" or "last" stimulus seconds of each trial (``stimulus_segment: first_or_last``;
            else "first").
        peripheral_norm: "none", "trial" or "subject" for the peripheral modality.
        thresholds: rating -> t, high ⇔ rating ≥ t (every rating of the dataset).
        tasks: task name -> :class:`~physiosync.data.labels.Task`; one stored label column each.
        facts: The facts preprocessing follows when they are not a shipped file's (own recordings: the
            dataset file, channel patterns resolved); None = ``dataset_facts(dataset)``. Not part of
            :meth:`to_dict` (the cache hash covers the dataset file itself as an input file).
    """

    dataset: str
    four_tie_bug: bool
    ecg_from_eeg_bug: bool
    baseline_bug: bool
    window_bug: bool
    segment: str
    peripheral_norm: str
    thresholds: dict[str, float]
    tasks: dict[str, Task] = field(default_factory=dict)
    facts: DatasetFacts | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        # the hashed form: every field but ``facts`` (the dataset file is hashed as an input file), tasks as
        # plain dicts
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("facts", "tasks")} | {
            "thresholds": dict(self.thresholds), "tasks": {n: asdict(t) for n, t in self.tasks.items()}}

    @property
    def dataset_facts(self) -> DatasetFacts:
        """The facts this plan preprocesses by."""
        return self.facts if self.facts is not None else dataset_facts(self.dataset)


def resolve_plan(
    dataset: str, cfg: PreprocessConfig, tasks: Mapping[str, TaskConfig] | None = None,
    facts: DatasetFacts | None = None,
) -> PreprocessPlan:
    """Resolve quirk switches for ``dataset``; the peripheral normalisation and thresholds are its defaults.

    A quirk switch counts only where the dataset's facts list it under ``quirks`` (else ``False``), and
    the segment option only where its stimuli are longer than kept (``stimulus_segment: first_or_last``).
    Dataset defaults (``peripheral_norm``, ``thresholds``) come from
    :func:`physiosync.config.resolve_preprocess`, the one place that fills them (a no-op on a config already
    resolved by :func:`physiosync.config.resolve_config`). ``tasks`` are the config's label tasks (None =
    only the dataset's own), combined with the facts' by :func:`physiosync.config.resolve_tasks`.
    ``facts``: given for datasets whose facts are not a shipped file (own recordings,
    :func:`physiosync.data.readers.facts_of`).
    """
    given = facts
    facts = facts if facts is not None else dataset_facts(dataset)
    cfg = resolve_preprocess(facts, cfg)
    assert cfg.peripheral_norm is not None and cfg.thresholds is not None

    def applies(quirk: str) -> bool:
        return quirk in facts.quirks and cfg.quirk(quirk)

    return PreprocessPlan(
        dataset=dataset,
        four_tie_bug=applies("deap_four_tie_bug"),
        ecg_from_eeg_bug=applies("dreamer_ecg_from_eeg_bug"),
        baseline_bug=applies("dreamer_baseline_bug"),
        window_bug=applies("dreamer_window_bug"),
        segment=(cfg.dreamer_segment if facts.stimulus_segment == "first_or_last"
                 else facts.stimulus_segment if facts.stimulus_segment in ("first", "last") else "first"),
        peripheral_norm=cfg.peripheral_norm,
        thresholds=dict(cfg.thresholds),
        tasks=dataset_tasks(given if given is not None else dataset, tasks),
        facts=given,
    )


@dataclass
class PreparedSubject:
    """One subject after preprocessing.

    Attributes:
        subject: Canonical id ("s01").
        signals: modality -> Shape: (n_trials, n_chans, N_SAMPLES) float32 (may be the caller's buffers).
        stimulus: Shape: (n_trials,) int64 stimulus ids.
        ratings: every rating column of the dataset ("valence", "arousal", ...) -> Shape: (n_trials,) float64.
        labels: ``label_<task>`` for every task of the plan -> Shape: (n_trials,) int64.
    """

    subject: str
    signals: dict[str, np.ndarray]
    stimulus: np.ndarray
    ratings: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]


# --------------------------------------------------------------------------------------------------
# building blocks (vectorised over any leading axes)


def make_baseline_template(baseline: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Mean of the complete ``window``-sample windows of a baseline, per channel and sample position.

    Shape: baseline (..., C, L) -> (..., C, window); samples past the last complete window are ignored.
    """
    n_win = baseline.shape[-1] // window
    if n_win == 0:
        raise ValueError(f"baseline of {baseline.shape[-1]} samples has no complete {window}-sample window")
    cut = baseline[..., : n_win * window]
    return cut.reshape(*cut.shape[:-1], n_win, window).mean(axis=-2)


def zscore_across_channels(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Per time point, z-score the non-zero channel values (population std); exact zeros stay zero.

    This is the authors' spatial normalisation (§2.1 step 3). Where all non-zero values are equal
    (std 0) the result is 0 instead of the authors' NaN, so one flat instant cannot poison a batch.

    Shape: x (..., C, T) -> (..., C, T); ``out`` (same shape, any float dtype) receives the result.
    """
    x = np.asarray(x, dtype=np.float64)
    n = np.count_nonzero(x, axis=-2)[..., None, :]
    has_zeros = bool((n < x.shape[-2]).any())
    n_safe = np.maximum(n, 1)
    mean = x.sum(axis=-2, keepdims=True) / n_safe  # zeros add nothing to the sum
    d = x - mean
    if has_zeros:  # rare on real data, so the mask pass is skipped when no channel value is exactly 0
        d *= x != 0
    # Two-pass (centred) variance, as numpy's std: no cancellation when the mean is large.
    std = np.sqrt(np.einsum("...ct,...ct->...t", d, d)[..., None, :] / n_safe)
    std[std == 0] = 1.0
    if out is None:
        out = np.empty_like(d)
    np.divide(d, std, out=out, casting="same_kind")  # straight into the (float32) destination
    return out


def normalize_over_time(x: np.ndarray, mode: str) -> np.ndarray:
    """Per-channel z-score of a peripheral signal over time (population std, std 0 guarded), in place.

    ``trial``: statistics per (trial, channel); ``subject``: per channel over all trials of the subject;
    ``none``: unchanged. Used for GSR (D23 option) and the real DREAMER ECG (§2.4).

    Shape: x (n_trials, C, T) float -> same array.
    """
    if mode == "none":
        return x
    axes = (-1,) if mode == "trial" else (0, -1)
    if mode not in ("trial", "subject"):
        raise ValueError(f"unknown peripheral normalisation {mode!r}")
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = x.std(axis=axes, keepdims=True, dtype=np.float64)
    std[std == 0] = 1.0
    x -= mean.astype(x.dtype)
    x /= std.astype(x.dtype)
    return x


def segment_windows(x: np.ndarray, window: int = WINDOW, official: bool = False) -> np.ndarray:
    """Cut a signal into 1 s windows.

    Fixed: all complete windows w0..w_{n-1}. ``official`` (D13) reproduces the authors' segmenter: a
    window is produced only while ``start + window < L`` (so the last complete window is lost) and the
    first window is emitted twice, giving ``[w0, w0, w1, ..., w_{k-1}]``.

    Shape: x (C, L) -> (n_segments, C, window).
    """
    n_chans, length = x.shape
    n_win = length // window
    if official:
        n_win = max(0, -(-(length - window) // window))  # count of starts j*window with end < length
    wins = x[:, : n_win * window].reshape(n_chans, n_win, window).transpose(1, 0, 2)
    if official and n_win > 0:
        wins = np.concatenate([wins[:1], wins], axis=0)
    return wins


def make_running_templates(segments: list[np.ndarray], n_per_clip: int) -> np.ndarray:
    """The authors' DREAMER baseline accumulator (D3), reproduced exactly.

    All clips' baseline segments are stacked in clip order into one list; for clip k = 1..K a buffer that
    is never reset becomes ``(buffer + Σ_{i=1..n} seg[k·i − 1]) / n`` and is clip k's template. Only clip 1
    averages its own baseline; later clips stride across other clips' segments.

    Args:
        segments: per clip, Shape: (n_segments_k, C, W).
        n_per_clip: n, the loop count (the authors' constant = EEG baseline segments per clip, 61).

    Returns:
        Shape: (K, C, W) templates.
    """
    flat = np.concatenate(segments, axis=0)
    n_clips = len(segments)
    i = np.arange(1, n_per_clip + 1)
    buffer = np.zeros(flat.shape[1:], dtype=np.float64)
    templates = np.empty((n_clips, *flat.shape[1:]), dtype=np.float64)
    for k in range(1, n_clips + 1):
        idx = k * i - 1
        if idx[-1] >= len(flat):
            raise ValueError(f"baseline segment index {idx[-1]} out of range ({len(flat)} segments)")
        buffer = (buffer + flat[idx].sum(axis=0)) / n_per_clip
        templates[k - 1] = buffer
    return templates


# --------------------------------------------------------------------------------------------------
# the two baseline layouts (facts: baseline_layout)


def _trial_array(rec: SubjectRecording, k: int, part: str, mod: str, n_chans: int) -> np.ndarray:
    trial = rec.trials[k]
    arrays = trial.baseline if part == "baseline" else trial.signal
    if mod not in arrays:
        raise DataFormatError(rec.source, f"trial {k} {part}[{mod!r}]", "missing", f"modality {mod!r}")
    x = np.asarray(arrays[mod])
    if x.ndim != 2 or x.shape[0] != n_chans:
        raise DataFormatError(rec.source, f"trial {k} {part}[{mod!r}] shape", x.shape, f"({n_chans}, n_samples)")
    if not np.issubdtype(x.dtype, np.number):
        raise DataFormatError(rec.source, f"trial {k} {part}[{mod!r}] dtype", x.dtype, "a numeric array")
    return x


def preprocess_prefix_baseline(
    rec: SubjectRecording, plan: PreprocessPlan, facts: DatasetFacts, out: dict[str, np.ndarray]
) -> None:
    """``baseline_layout: prefix`` (DEAP §2.1–§2.2) for one subject, written into ``out`` (e.g. memmap rows).

    Every trial holds ``baseline_s`` then exactly ``stimulus_s`` at ``target_sfreq`` (the facts schema
    refuses a prefix layout with another native rate).

    Shape: out[mod] (n_trials, n_chans, stimulus samples), any float dtype (DEAP: eeg 32, gsr 1 channels).
    """
    n_base = facts.samples(facts.baseline_s)
    n_stim = facts.samples(facts.stimulus_s)
    for mod, spec in facts.modalities.items():
        n_chans = len(spec.ch_names)
        peripheral = spec.role == "peripheral"
        block = np.empty((rec.n_trials, n_chans, n_stim), dtype=np.float64) if peripheral else None
        # One trial per vectorised step: its float64 working set (2 MB) stays in CPU cache, measured
        # 2x faster than whole-subject arrays; the only loop is over trials, never samples.
        for k in range(rec.n_trials):
            x = _trial_array(rec, k, "signal", mod, n_chans)
            base = _trial_array(rec, k, "baseline", mod, n_chans)
            if x.shape[1] != n_stim or base.shape[1] != n_base:
                raise DataFormatError(rec.source, f"trial {k} {mod!r} samples (baseline, stimulus)",
                                      (base.shape[1], x.shape[1]), (n_base, n_stim))
            template = make_baseline_template(base.astype(np.float64, copy=False))
            # The subtraction itself makes the float64 working copy (reader arrays are views of the file).
            y = np.subtract(x.reshape(n_chans, -1, WINDOW), template[:, None, :], dtype=np.float64)
            y = y.reshape(n_chans, n_stim)
            if peripheral:
                block[k] = y
            else:
                zscore_across_channels(y, out=out[mod][k])
        if peripheral:
            # Subject-level statistics need every trial, so the (small) peripheral block is normalised whole.
            out[mod][...] = normalize_over_time(block, plan.peripheral_norm)


def _crop_stimulus(x: np.ndarray, segment: str, rec: SubjectRecording, k: int, mod: str,
                   facts: DatasetFacts) -> np.ndarray:
    n = facts.samples(facts.stimulus_s)
    if x.shape[-1] < n:
        raise DataFormatError(rec.source, facts.trial_source_name(rec.subject, k, mod),
                              f"{x.shape[-1]} samples ({x.shape[-1] / facts.target_sfreq:.2f} s) for subject "
                              f"{rec.subject} {facts.trial_noun} {k + 1}",
                              f">= {n} ({facts.stimulus_s:g} s at {facts.target_sfreq:g} Hz)")
    if facts.stimulus_segment == "whole" and x.shape[-1] != n:
        raise DataFormatError(rec.source, facts.trial_source_name(rec.subject, k, mod),
                              f"{x.shape[-1]} samples for subject {rec.subject} {facts.trial_noun} {k + 1}",
                              f"exactly {n} (stimulus_segment 'whole'; 'first'/'last' crop longer trials)")
    return x[:, :n] if segment == "first" else x[:, x.shape[-1] - n :]


def _to_target_rate(x: np.ndarray, sfreq: float, target: float = TARGET_SFREQ) -> np.ndarray:
    """Anti-aliased polyphase resampling to ``target`` Hz along time. Shape: (C, L) -> (C, L')."""
    ratio = Fraction(target).limit_denominator(1000) / Fraction(sfreq).limit_denominator(1000)
    if ratio == 1:
        return x
    from scipy.signal import resample_poly  # imported here: scipy.signal takes seconds to import

    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)


def _clip_templates(baselines: list[np.ndarray], plan: PreprocessPlan, n_per_clip: int) -> np.ndarray:
    """Per-clip baseline templates from segmented baselines. Shape: list of (n_k, C, W) -> (K, C, W)."""
    if plan.baseline_bug:
        return make_running_templates(baselines, n_per_clip)
    return np.stack([b.mean(axis=0) for b in baselines])


def _trial_rate(rec: SubjectRecording, k: int, mod: str, default: float) -> float:
    """Native rate of trial ``k``'s ``mod``: the trial's own (files at different rates) or the subject's."""
    rates = rec.trials[k].sfreq
    if rates is not None and mod in rates:
        return float(rates[mod])
    return float(rec.sfreq.get(mod, default))


def preprocess_separate_baseline(
    rec: SubjectRecording, plan: PreprocessPlan, facts: DatasetFacts, out: dict[str, np.ndarray]
) -> None:
    """``baseline_layout: separate`` (DREAMER §2.3–§2.4) or ``none`` for one subject, written into ``out``.

    Fixed defaults: a modality not at ``target_sfreq`` (the ECG) resampled to it (each trial at its own
    native rate: own recordings may mix files at different rates), each clip's own template (``none``: no
    baseline is subtracted), windows w0..w59 of the chosen 60 s (own recordings: ``stimulus_s`` of the
    first or last part of trials of any length), EEG spatial z-score, peripheral per-channel
    normalisation; EEG-only data (no peripheral modality) run the EEG branch alone. With D1
    the authors' pipeline is followed for the peripheral branch as a whole: the peripheral signal is *not*
    resampled (their code cuts the 256 Hz baseline as if it were 128 Hz; only the template survives), the
    "ECG" = corrected first EEG channels (AF3/F7) minus that template, then a 2-channel spatial z-score and
    no further normalisation.

    Shape: out[eeg] (n_trials, n_eeg, 7680), out[peripheral] (n_trials, n_per, 7680) (DREAMER: 14 and 2).
    """
    eeg_mod, per_mod = facts.eeg, facts.peripheral
    n_eeg = len(facts.modalities[eeg_mod].ch_names or ())
    n_per = len(facts.modalities[per_mod].ch_names or ()) if per_mod is not None else 0
    n_stim = facts.samples(facts.stimulus_s)
    target = facts.target_sfreq
    window = facts.samples(1.0)  # templates and segments are 1 s long (DREAMER: WINDOW = 128)
    with_baseline = facts.baseline_layout != "none"
    official = plan.window_bug
    defaults = {mod: spec.sfreq or 0.0 for mod, spec in facts.modalities.items()}

    eeg_stim, eeg_base, per_stim, per_base = [], [], [], []
    for k in range(rec.n_trials):
        e_s = _trial_array(rec, k, "signal", eeg_mod, n_eeg).astype(np.float64, copy=False)
        e_b = _trial_array(rec, k, "baseline", eeg_mod, n_eeg).astype(np.float64, copy=False) if with_baseline else None
        c_s = c_b = None
        if per_mod is not None:
            c_s = _trial_array(rec, k, "signal", per_mod, n_per).astype(np.float64, copy=False)
            if with_baseline:
                c_b = _trial_array(rec, k, "baseline", per_mod, n_per).astype(np.float64, copy=False)
        e_rate = _trial_rate(rec, k, eeg_mod, defaults[eeg_mod])
        e_s = _to_target_rate(e_s, e_rate, target)
        if e_b is not None:
            e_b = _to_target_rate(e_b, e_rate, target)
        if per_mod is not None and not plan.ecg_from_eeg_bug:
            c_rate = _trial_rate(rec, k, per_mod, defaults[per_mod])
            c_s = _to_target_rate(c_s, c_rate, target)
            if c_b is not None:
                c_b = _to_target_rate(c_b, c_rate, target)
        eeg_stim.append(segment_windows(_crop_stimulus(e_s, plan.segment, rec, k, eeg_mod, facts), window,
                                        official=official))
        if e_b is not None:
            eeg_base.append(segment_windows(e_b, window, official=official))
        if per_mod is not None and not plan.ecg_from_eeg_bug:
            per_stim.append(segment_windows(_crop_stimulus(c_s, plan.segment, rec, k, per_mod, facts), window,
                                            official=official))
        if c_b is not None:
            per_base.append(segment_windows(c_b, window, official=official))
        if with_baseline and (len(eeg_base[-1]) == 0 or (per_mod is not None and len(per_base[-1]) == 0)):
            raise DataFormatError(rec.source, f"trial {k} baseline samples", e_b.shape[-1], f">= {2 * window}")

    eeg = np.stack(eeg_stim)  # (K, 60, C, W)
    per_tpl = None
    if with_baseline:
        n_per_clip = len(eeg_base[0])  # the authors' loop constant (61 on the real data)
        try:
            eeg_tpl = _clip_templates(eeg_base, plan, n_per_clip)  # (K, C, W)
            per_tpl = _clip_templates(per_base, plan, n_per_clip) if per_mod is not None else None
        except ValueError as e:
            raise DataFormatError(rec.source, "baseline lengths", str(e), "equal baselines for every clip") from None
        eeg -= eeg_tpl[:, None]
    per = None
    if per_mod is not None:
        if plan.ecg_from_eeg_bug:
            per = eeg[:, :, :n_per] - per_tpl[:, None]  # D1: AF3/F7 of the corrected EEG stand in for the ECG
        else:
            per = np.stack(per_stim)
            if per_tpl is not None:
                per -= per_tpl[:, None]
    # (K, 60, C, W) -> (K, C, 60 * W): the 60 segments stored back to back so 1 s windows stay views.
    eeg = eeg.transpose(0, 2, 1, 3).reshape(rec.n_trials, n_eeg, n_stim)
    zscore_across_channels(eeg, out=out[eeg_mod])
    if per is None:
        return
    per = per.transpose(0, 2, 1, 3).reshape(rec.n_trials, n_per, n_stim)
    if plan.ecg_from_eeg_bug:
        zscore_across_channels(per, out=out[per_mod])
    else:
        out[per_mod][...] = normalize_over_time(per, plan.peripheral_norm)


# The numerical path of each baseline layout (facts: ``baseline_layout``).
BY_BASELINE_LAYOUT = {"prefix": preprocess_prefix_baseline, "separate": preprocess_separate_baseline,
                      "none": preprocess_separate_baseline}


def check_prepared(rec: SubjectRecording, out: dict[str, np.ndarray], facts: DatasetFacts | None = None) -> None:
    """Refuse prepared arrays that are not usable data: non-finite, or constant over a whole trial.

    A pure check after preprocessing (it changes no value, so valid inputs give bit-identical caches). It
    catches what no input check can see: values that do not fit float32 once stored (Inf), and trials that
    carry no signal at all (a flat recording, or one that preprocessing reduced to zeros) which would
    otherwise enter training as if they were data.

    Shape: out[mod] (n_trials, C, n_samples) float.

    Args:
        facts: The dataset's facts, for the trial's source name (``trial_source``, e.g. DREAMER's struct
            path); without them the trial is named ``trial k signal['mod']``.

    Raises:
        DataFormatError: naming the subject, trial (or its source path), modality and what was found.
    """
    for mod, x in out.items():
        hi = x.max(axis=(1, 2))  # NaN propagates into both reductions
        lo = x.min(axis=(1, 2))
        bad = ~(np.isfinite(hi) & np.isfinite(lo)) | (hi == lo)
        if bad.any():
            k = int(np.argmax(bad))
            if np.isnan(x[k]).any():
                what = "NaN"
            elif not (np.isfinite(hi[k]) and np.isfinite(lo[k])):
                what = "Inf (a value beyond the float32 range ±3.4e38)"
            else:
                what = f"a constant {float(hi[k]):g} over the whole trial (no signal)"
            where = facts.trial_source_name(rec.subject, k, mod) if facts else f"trial {k} signal[{mod!r}]"
            raise DataFormatError(rec.source, where,
                                  f"{what} in subject {rec.subject} trial {k} ({mod}) after preprocessing",
                                  "finite float32 values that vary within each trial",
                                  hint=f"fix the recording, or leave {rec.subject} out with "
                                       "--set dataset.subjects=[...]")


def preprocess_recording(
    rec: SubjectRecording, plan: PreprocessPlan, out: dict[str, np.ndarray] | None = None
) -> PreparedSubject:
    """Preprocess one subject into float32 stimulus arrays plus per-trial metadata and labels.

    Args:
        rec: What a reader yielded.
        plan: From :func:`resolve_plan`.
        out: Optional modality -> writable (n_trials, C, n_samples) arrays (the cache passes its memmap
            rows so nothing is copied twice); allocated as float32 when omitted. ``n_samples`` is the
            facts' ``stimulus_s`` at ``target_sfreq`` (:data:`N_SAMPLES` for DEAP and DREAMER).
    """
    facts = plan.dataset_facts
    n_samples = facts.samples(facts.stimulus_s)
    if rec.n_trials == 0:
        raise DataFormatError(rec.source, "trials", 0, "at least one trial")
    if out is None:
        out = {
            mod: np.empty((rec.n_trials, len(spec.ch_names), n_samples), dtype=np.float32)
            for mod, spec in facts.modalities.items()
        }
    for mod, spec in facts.modalities.items():
        expected = (rec.n_trials, len(spec.ch_names), n_samples)
        if out[mod].shape != expected:
            raise ValueError(f"output buffer for {mod!r} has shape {out[mod].shape}, expected {expected}")
    # A float32 store of a value beyond ±3.4e38 (e.g. GSR in raw units with peripheral_norm=none) becomes
    # Inf; numpy's cast warning is silenced because check_prepared reports it as an error below.
    with np.errstate(over="ignore"):
        BY_BASELINE_LAYOUT[facts.baseline_layout](rec, plan, facts, out)
    check_prepared(rec, out, facts)

    # Every rating column is stored (NaN where the recording lacks it); those a task reads must be finite.
    ratings = {}
    for name in facts.ratings:
        r = np.asarray(rec.ratings.get(name, np.full(rec.n_trials, np.nan)), dtype=np.float64).reshape(-1)
        if r.shape != (rec.n_trials,):
            raise DataFormatError(rec.source, f"ratings[{name!r}]", r.shape, (rec.n_trials,))
        ratings[name] = r
    for name in dict.fromkeys(c for t in plan.tasks.values() for c in t.columns):
        if not np.isfinite(ratings[name]).all():
            raise DataFormatError(rec.source, f"ratings[{name!r}]", "missing or non-finite", "finite ratings")
    try:
        labels = make_labels(ratings, plan.tasks, plan.thresholds, plan.four_tie_bug)
    except ValueError as e:  # a categorical task met a value outside its classes
        raise DataFormatError(rec.source, "ratings", f"subject {rec.subject}: {e}",
                              "values listed by the task's classes") from None
    return PreparedSubject(
        subject=rec.subject,
        signals=out,
        stimulus=np.array([t.stimulus for t in rec.trials], dtype=np.int64),
        ratings=ratings,
        labels=labels,
    )
