"""The pre-training objective: LS-TCL + CM-CA as named loss terms (method-spec §4.1, §4.2, §6).

Unified batch layout
--------------------
Every pairing mode feeds :func:`pretrain_loss` the same structure, so there is one objective and the
pairing is purely a data question. ``batch[mod]`` is a float32 tensor **(B, 2, N, C, T)**: B pairs, two
*sides* per pair, N windows per side (max-pooled into one embedding), C channels, T samples.

- ``groups`` (paper, and the D2 fix for the Cross variants): pair ``b`` is one stimulus moment; side 0
  holds the windows of N subjects drawn from half A of the training subjects at that moment, side 1 those
  of N subjects from half B (:func:`physiosync.data.sampling.sample_groups`; the pipeline gathers them).
- ``augviews``: N = 1; both sides hold the same window and the two independent
  :func:`physiosync.data.augment.augment_batch` draws (one per side) make the two views.
- ``official`` (D2, faithful Cross): N = 1; the sides are rows ``i`` and ``i + B`` of a shuffled batch of
  2B unrelated samples, i.e. positives that carry no correspondence.

The pipeline builds these batches (``physiosync.training.pretrain.plan_batches`` + ``physiosync.data.batches``); this
module only checks the layout and scores it.

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

import torch
from torch import nn

from physiosync.config import PretrainConfig
from physiosync.data.contract import DataContract
from physiosync.errors import ConfigError
from physiosync.losses.contrastive import nt_xent, top1_retrieval_tensor


def resolve_roles(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[str, str | None]:
    """Names of the EEG and (optional) peripheral modality of a batch.

    Roles come from ``model.contract`` (a :class:`DataContract`) when the model carries one, else from
    ``model.modalities`` (``PretrainModel`` lists the EEG first), else the modality called ``"eeg"`` is the
    EEG; any other batch key is the peripheral partner. Modality names are contract names, never dataset
    names.

    Shape:
        batch[mod]: (B, 2, N, C, T).
    """
    mods = list(batch)
    for m in mods:
        if m not in model.encoders:
            raise KeyError(
                f"batch has modality {m!r} but the model has no encoder for it ({list(model.encoders)})"
            )
    contract = getattr(model, "contract", None)
    listed = getattr(model, "modalities", None)
    if isinstance(contract, DataContract):
        eeg = contract.eeg.name
    elif isinstance(listed, (list, tuple)) and listed:
        eeg = str(listed[0])
    else:
        eeg = "eeg"
    others = [m for m in mods if m != eeg]
    if len(others) > 1:
        raise ValueError(f"at most one peripheral modality is supported, got {others}")
    pps = others[0] if others else None
    if eeg not in batch:
        raise KeyError(f"batch has no EEG modality {eeg!r} (keys: {mods})")
    return eeg, pps


def _check_layout(batch: dict[str, torch.Tensor], cfg: PretrainConfig) -> tuple[int, int]:
    shapes = {m: tuple(x.shape) for m, x in batch.items()}
    for m, s in shapes.items():
        if len(s) != 5 or s[1] != 2:
            raise ValueError(f"batch[{m!r}] must be (B, 2, N, C, T), got {s}")
    lead = {s[:3] for s in shapes.values()}
    if len(lead) != 1:
        raise ValueError(f"modalities disagree on (B, 2, N): {shapes}")
    n_pairs, _, n_members = lead.pop()
    if n_pairs < 2:
        raise ValueError(f"contrastive learning needs at least 2 pairs per batch, got B = {n_pairs}")
    expected = cfg.n_group_subjects if cfg.pairing == "groups" else 1
    if n_members != expected:
        raise ValueError(f"pairing {cfg.pairing!r} expects N = {expected} windows per side, got {n_members}")
    return n_pairs, n_members


def _encode_pooled(
    model: nn.Module, mod: str, x: torch.Tensor, project: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Encode all B·2·N windows of one modality in one call and max-pool over the N group members.

    Shape:
        x: (B, 2, N, C, T); returns h (B, 2, 4d) and z (B, 2, P) or None when ``project`` is False.
    """
    n_pairs, n_sides, n_members, n_chans, n_times = x.shape
    flat = x.reshape(n_pairs * n_sides * n_members, n_chans, n_times)  # (B·2·N, C, T)
    h = model.encoders[mod].forward_features(flat)  # (B·2·N, 4d)
    # The projector (with its BatchNorm) sees the individual windows, as in the authors' code; pooling
    # happens afterwards, element-wise over each group's N members.
    z = model.projectors[mod](h) if project else None  # (B·2·N, P)
    h_pooled = h.reshape(n_pairs, n_sides, n_members, -1).amax(dim=2)  # (B, 2, 4d)
    z_pooled = None if z is None else z.reshape(n_pairs, n_sides, n_members, -1).amax(dim=2)  # (B, 2, P)
    return h_pooled, z_pooled


def pretrain_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], cfg: PretrainConfig
) -> dict[str, torch.Tensor]:
    """LS-TCL per modality plus the two CM-CA terms, as named terms and their weighted total.

    Args:
        model: A pre-training model with ``.encoders[mod].forward_features`` ((B, C, T) → (B, 4d)),
            ``.projectors[mod]`` ((B, 4d) → (B, P)) and a shared ``.cm_head`` ((B, 4d) → (B, K)).
        batch: Windows per modality in the unified layout (module docstring).
        cfg: Temperature, ablation switches (``temporal``, ``cross_modal``), term weights and pairing.

    Shape:
        batch[mod]: (B, 2, N, C, T) float; every returned tensor is a scalar.

    Returns:
        ``loss`` (the weighted total, differentiable) and, for each term that is computed,
        ``tcl_<eeg>``, ``tcl_<pps>``, ``cm_pps_eeg`` (PPS side 0 ↔ EEG side 1), ``cm_eeg_pps`` (EEG side 0
        ↔ PPS side 1) as tensors, plus detached 0-d tensors ``top1_<mod>`` (temporal retrieval,
        side 0 → side 1) and ``top1_cm_pps_eeg`` / ``top1_cm_eeg_pps`` (tensors, not floats, so a loop can
        sum them on the device without a host sync per step).

    Raises:
        ConfigError: both ablation switches off, or only CM-CA requested without a peripheral modality.
    """
    if not (cfg.temporal or cfg.cross_modal):
        raise ConfigError("pretrain.temporal and pretrain.cross_modal are both false: nothing to optimise")
    eeg, pps = resolve_roles(model, batch)
    n_pairs, _ = _check_layout(batch, cfg)
    use_cm = cfg.cross_modal and pps is not None
    if not (cfg.temporal or use_cm):
        raise ConfigError("pretrain.temporal is false and there is no peripheral modality for CM-CA")
    tau = cfg.temperature
    mods = [eeg] if pps is None else [eeg, pps]

    out: dict[str, torch.Tensor] = {}
    pooled: dict[str, torch.Tensor] = {}
    total = None
    for mod in mods:  # at most two modalities; everything inside is batched
        h, z = _encode_pooled(model, mod, batch[mod], project=cfg.temporal)
        pooled[mod] = h
        if z is not None:
            term = nt_xent(z[:, 0], z[:, 1], tau)
            out[f"tcl_{mod}"] = term
            out[f"top1_{mod}"] = top1_retrieval_tensor(z[:, 0], z[:, 1])
            total = cfg.w_temporal * term if total is None else total + cfg.w_temporal * term

    if use_cm:
        # Rows [side 0; side 1] per modality; the shared head runs once per modality so its BatchNorm
        # statistics are per modality while the affine parameters are shared (§3.5).
        e = model.cm_head(pooled[eeg].transpose(0, 1).reshape(2 * n_pairs, -1))  # (2B, K)
        p = model.cm_head(pooled[pps].transpose(0, 1).reshape(2 * n_pairs, -1))  # (2B, K)
        e_swap = torch.cat([p[:n_pairs], e[n_pairs:]])  # [PPS side 0; EEG side 1]
        p_swap = torch.cat([e[:n_pairs], p[n_pairs:]])  # [EEG side 0; PPS side 1]
        for name, rows in (("cm_pps_eeg", e_swap), ("cm_eeg_pps", p_swap)):
            term = nt_xent(rows[:n_pairs], rows[n_pairs:], tau)
            out[name] = term
            out[f"top1_{name}"] = top1_retrieval_tensor(rows[:n_pairs], rows[n_pairs:])
            total = cfg.w_cross_modal * term if total is None else total + cfg.w_cross_modal * term

    out["loss"] = total
    return out
