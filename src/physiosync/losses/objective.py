"""The pre-training objective: LS-TCL + CM-CA as named loss terms (method-spec §4.1, §4.2, §6).

The model runs the forward pass (``PretrainModel.forward(batch)`` → :class:`physiosync.models.PretrainOutputs`:
pooled encoder features, projections and cross-modal head outputs by modality and side); this module only
scores those outputs, so the objective can be checked on given features in closed form. Callers write::

    terms = pretrain_loss(model(batch, **outputs_needed(cfg)), cfg)

Unified batch layout
--------------------
Every pairing mode feeds the model (and so :func:`pretrain_loss`) the same structure, so there is one
objective and the pairing is purely a data question. ``batch[mod]`` is a float32 tensor **(B, 2, N, C, T)**: B pairs, two
*sides* per pair, N windows per side (max-pooled into one embedding), C channels, T samples.

- ``groups`` (paper, and the D2 fix for the Cross variants): pair ``b`` is one stimulus moment; side 0
  holds the windows of N subjects drawn from half A of the training subjects at that moment, side 1 those
  of N subjects from half B (:func:`physiosync.data.sampling.sample_groups`; the pipeline gathers them).
- ``augviews``: N = 1; both sides hold the same window and the two independent
  :func:`physiosync.data.augment.augment_batch` draws (one per side) make the two views.
- ``official`` (D2, faithful Cross): N = 1; the sides are rows ``i`` and ``i + B`` of a shuffled batch of
  2B unrelated samples, i.e. positives that carry no correspondence.

The pipeline builds these batches (``physiosync.training.pretrain.plan_batches`` +
``physiosync.data.batches``); the model checks the layout and this module checks that it fits the pairing.

The modalities of one batch share B, 2 and N: index ``(b, s, k)`` is the same subject and moment in EEG and
in the peripheral signal (that is what CM-CA aligns).

Loss scale
----------
Each term is the standard mean-form NT-Xent (:func:`physiosync.losses.contrastive.nt_xent`). The total is
``w_temporal·(TCL_eeg + TCL_pps) + w_cross_modal·(CM_pps_eeg + CM_eeg_pps)``. With the default weights 1
this equals the authors' Dependent loss ½·TCL + ½·TCL + CM written in their "sum of both directions" units
(§4.1 item 6: four unweighted NT-Xent terms); the Cross code's scale (§4.2: each term in mean form and
halved) is ``w_temporal = w_cross_modal = 0.5``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from physiosync.config import PretrainConfig
from physiosync.errors import ConfigError
from physiosync.losses.contrastive import nt_xent, top1_retrieval_tensor

if TYPE_CHECKING:  # the objective scores model outputs; it never runs a model
    from physiosync.models.heads import PretrainOutputs


def outputs_needed(cfg: PretrainConfig) -> dict[str, bool]:
    """Which model outputs the configured terms score: ``PretrainModel.forward`` keyword arguments.

    Why: an ablated term's module must not run at all (no gradient, no dropout draw), so the model is
    told what to compute rather than computing everything.
    """
    return {"project": cfg.temporal, "cross_modal": cfg.cross_modal}


def pretrain_loss(out: PretrainOutputs, cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """LS-TCL per modality plus the two CM-CA terms, as named terms and their weighted total.

    Args:
        out: The model's outputs for one batch (``model(batch, **outputs_needed(cfg))``).
        cfg: Temperature, ablation switches (``temporal``, ``cross_modal``), term weights and pairing.

    Shape:
        out.projections[mod]: (B, 2, P); out.cross_modal[mod]: (2, B, K); every returned tensor is a scalar.

    Returns:
        ``loss`` (the weighted total, differentiable) and, for each term that is computed,
        ``tcl_<eeg>``, ``tcl_<pps>``, ``cm_pps_eeg`` (PPS side 0 ↔ EEG side 1), ``cm_eeg_pps`` (EEG side 0
        ↔ PPS side 1) as tensors, plus detached 0-d tensors ``top1_<mod>`` (temporal retrieval,
        side 0 → side 1) and ``top1_cm_pps_eeg`` / ``top1_cm_eeg_pps`` (tensors, not floats, so a loop can
        sum them on the device without a host sync per step).

    Raises:
        ConfigError: both ablation switches off, or only CM-CA requested without a peripheral modality.
        ValueError: the batch does not fit the pairing (N, B < 2) or an output the terms need is missing.
    """
    if not (cfg.temporal or cfg.cross_modal):
        raise ConfigError("pretrain.temporal and pretrain.cross_modal are both false: nothing to optimise")
    n_pairs = out.n_pairs
    if n_pairs < 2:
        raise ValueError(f"contrastive learning needs at least 2 pairs per batch, got B = {n_pairs}")
    expected = cfg.n_group_subjects if cfg.pairing == "groups" else 1
    if out.n_members != expected:
        raise ValueError(f"pairing {cfg.pairing!r} expects N = {expected} windows per side, got {out.n_members}")
    eeg, pps = out.eeg, out.peripheral
    use_cm = cfg.cross_modal and pps is not None
    if not (cfg.temporal or use_cm):
        raise ConfigError("pretrain.temporal is false and there is no peripheral modality for CM-CA")
    missing = ([m for m in out.modalities if m not in out.projections] if cfg.temporal else []) + (
        [f"cross_modal[{m}]" for m in out.modalities if m not in out.cross_modal] if use_cm else [])
    if missing:
        raise ValueError(f"model outputs lack {missing}: call model(batch, **outputs_needed(cfg))")
    tau = cfg.temperature

    terms: dict[str, torch.Tensor] = {}
    total = None
    if cfg.temporal:
        for mod in out.modalities:
            z = out.projections[mod]  # (B, 2, P)
            term = nt_xent(z[:, 0], z[:, 1], tau)
            terms[f"tcl_{mod}"] = term
            terms[f"top1_{mod}"] = top1_retrieval_tensor(z[:, 0], z[:, 1])
            total = cfg.w_temporal * term if total is None else total + cfg.w_temporal * term

    if use_cm:
        e, p = out.cross_modal[eeg], out.cross_modal[pps]  # (2, B, K) each
        e_swap = torch.cat([p[0], e[1]])  # [PPS side 0; EEG side 1]
        p_swap = torch.cat([e[0], p[1]])  # [EEG side 0; PPS side 1]
        for name, rows in (("cm_pps_eeg", e_swap), ("cm_eeg_pps", p_swap)):
            term = nt_xent(rows[:n_pairs], rows[n_pairs:], tau)
            terms[name] = term
            terms[f"top1_{name}"] = top1_retrieval_tensor(rows[:n_pairs], rows[n_pairs:])
            total = cfg.w_cross_modal * term if total is None else total + cfg.w_cross_modal * term

    terms["loss"] = total
    return terms
