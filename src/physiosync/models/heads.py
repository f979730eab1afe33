"""Pre-training heads and the pre-training model (method-spec §3.4, §3.5).

The projector feeds the temporal (LS-TCL) loss; the cross-modal head, shared by both modalities, feeds the
CM-CA loss. :class:`PretrainModel` holds one encoder + projector per modality at ONE window length plus the
shared cross-modal head; its forward pass returns what they produce (:class:`PretrainOutputs`) and the
objective (``physiosync.losses.objective``) decides how the outputs are scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from physiosync.config import ModelConfig
from physiosync.data.contract import DataContract
from physiosync.models.encoder import Encoder, build_encoder


class Projector(nn.Module):
    """Affine projector 4d → 1024 → BN → Dropout → 2048 → BN → Dropout → 4096, no non-linearity (§3.4).

    Args:
        in_dim: Width of the encoder representation (4·d).
        dims: Output widths of the linear layers; BN + dropout follow every layer but the last.
        dropout: Dropout probability after each BN.
        dropout_in_eval: D12 — the authors' functional dropout is active in eval mode too; default off.
    """

    def __init__(
        self,
        in_dim: int,
        dims: Sequence[int] = (1024, 2048, 4096),
        dropout: float = 0.2,
        dropout_in_eval: bool = False,
    ) -> None:
        super().__init__()
        widths = [in_dim, *dims]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.norms = nn.ModuleList(nn.BatchNorm1d(w) for w in dims[:-1])
        self.dropout, self.dropout_in_eval = float(dropout), bool(dropout_in_eval)

    @property
    def out_dim(self) -> int:
        return self.linears[-1].out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, 4d) -> (B, dims[-1])."""
        active = self.training or self.dropout_in_eval
        for linear, norm in zip(self.linears[:-1], self.norms, strict=True):
            x = F.dropout(norm(linear(x)), self.dropout, training=active)
        return self.linears[-1](x)


class CrossModalHead(nn.Module):
    """Linear(4d → 1024) + BatchNorm1d, shared by EEG and PPS (§3.5).

    Applied separately to each modality's batch, so BN statistics are per modality while the affine
    parameters are shared.
    """

    def __init__(self, in_dim: int, out_dim: int = 1024) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, 4d) -> (B, out_dim)."""
        return self.norm(self.linear(x))


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


def check_pair_layout(batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """``(B, N)`` of a pre-training batch; every modality must be (B, 2, N, C, T) with the same B and N.

    Why the modalities must agree: index ``(b, s, k)`` is the same subject and moment in EEG and in the
    peripheral signal — that is what CM-CA aligns.
    """
    shapes = {m: tuple(x.shape) for m, x in batch.items()}
    for m, s in shapes.items():
        if len(s) != 5 or s[1] != 2:
            raise ValueError(f"batch[{m!r}] must be (B, 2, N, C, T), got {s}")
    lead = {s[:3] for s in shapes.values()}
    if len(lead) != 1:
        raise ValueError(f"modalities disagree on (B, 2, N): {shapes}")
    n_pairs, _, n_members = lead.pop()
    return n_pairs, n_members


@dataclass(frozen=True)
class PretrainOutputs:
    """What one pre-training forward pass produces, by modality and side (method-spec §3.4, §3.5, §4.1).

    The two *sides* of a pair are its two views (two subject groups at one moment, or two augmentations of
    one window); each side's N windows are max-pooled into one vector, after the projector (whose
    BatchNorm sees the individual windows, as in the authors' code).

    Attributes:
        eeg: Name of the EEG modality.
        peripheral: Name of the peripheral modality, or ``None`` when the batch has none.
        n_members: N, windows per side that were pooled.
        features: ``{mod: (B, 2, 4d)}`` encoder representations, max-pooled over the N members.
        projections: ``{mod: (B, 2, P)}`` projector outputs, pooled likewise; empty unless requested.
        cross_modal: ``{mod: (2, B, K)}`` the shared cross-modal head on ``features`` (side-major: row
            ``[s, b]`` is side ``s`` of pair ``b``); empty unless requested and a peripheral is present.
    """

    eeg: str
    peripheral: str | None
    n_members: int
    features: dict[str, torch.Tensor]
    projections: dict[str, torch.Tensor]
    cross_modal: dict[str, torch.Tensor]

    @property
    def modalities(self) -> list[str]:
        """EEG first, then the peripheral modality if present."""
        return [self.eeg] if self.peripheral is None else [self.eeg, self.peripheral]

    @property
    def n_pairs(self) -> int:
        """B, positive pairs in the batch."""
        return int(self.features[self.eeg].shape[0])


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


class PretrainModel(nn.Module):
    """Encoders, projectors and the shared cross-modal head for one pre-training resolution.

    Attributes:
        encoders: ``ModuleDict`` by modality name ("eeg", "gsr", ...), EEG first.
        projectors: ``ModuleDict`` by modality name.
        cm_head: The shared :class:`CrossModalHead`, or ``None`` when the contract has no peripheral.
        window_s: The window length in seconds this model encodes.
    """

    def __init__(self, contract: DataContract, window_s: float, cfg: ModelConfig) -> None:
        super().__init__()
        self.window_s = float(window_s)
        specs = [contract.eeg] + ([contract.peripheral] if contract.peripheral is not None else [])
        self.modalities = [s.name for s in specs]
        self.encoders = nn.ModuleDict({s.name: build_encoder(s, window_s, cfg) for s in specs})
        self.projectors = nn.ModuleDict(
            {
                name: Projector(enc.out_dim, cfg.projector_dims, cfg.projector_dropout, cfg.projector_dropout_in_eval)
                for name, enc in self.encoders.items()
            }
        )
        eeg_dim = self.encoders[contract.eeg.name].out_dim
        self.cm_head = CrossModalHead(eeg_dim, cfg.cm_dim) if contract.peripheral is not None else None

    def encoder(self, modality: str) -> Encoder:
        return self.encoders[modality]  # type: ignore[return-value]

    def forward(
        self, batch: dict[str, torch.Tensor], project: bool = True, cross_modal: bool = True
    ) -> PretrainOutputs:
        """Encoder, projector and cross-modal head outputs of a pre-training batch (unified layout).

        Each modality's B·2·N windows go through its encoder in ONE call (pooled BatchNorm statistics, as the
        authors do), then through its projector; the shared cross-modal head runs once per modality on the
        pooled features, so its BatchNorm statistics are per modality while its affine parameters are
        shared (§3.5). Modules are run EEG first, then the peripheral; the head last (the order fixes
        which dropout draws each module gets).

        Args:
            batch: ``{mod: (B, 2, N, C, T)}``; see :mod:`physiosync.losses.objective` for the layout.
            project: Run the projectors (needed by the temporal terms; skipped when they are ablated, so
                the projectors get no gradient and draw no dropout).
            cross_modal: Run the cross-modal head (when the batch has a peripheral modality).

        Shape:
            batch[mod]: (B, 2, N, C, T); see :class:`PretrainOutputs` for the outputs.
        """
        eeg, pps = resolve_roles(self, batch)
        n_pairs, n_members = check_pair_layout(batch)
        features: dict[str, torch.Tensor] = {}
        projections: dict[str, torch.Tensor] = {}
        for mod in ([eeg] if pps is None else [eeg, pps]):  # at most two modalities; everything inside is batched
            h, z = _encode_pooled(self, mod, batch[mod], project)
            features[mod] = h
            if z is not None:
                projections[mod] = z
        heads: dict[str, torch.Tensor] = {}
        if cross_modal and pps is not None:
            for mod in (eeg, pps):  # rows [side 0; side 1] → (2, B, K)
                rows = features[mod].transpose(0, 1).reshape(2 * n_pairs, -1)  # (2B, 4d)
                heads[mod] = self.cm_head(rows).reshape(2, n_pairs, -1)
        return PretrainOutputs(eeg, pps, n_members, features, projections, heads)

    def encode(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Encoder representations of every modality in ``batch``.

        Shape:
            batch[mod]: (B, n_chans, n_times); returns {mod: (B, 4·d)}.
        """
        return {mod: self.encoders[mod].forward_features(x) for mod, x in batch.items()}

    def encoder_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """Per-modality encoder state dicts (no projector / head), detached *copies*.

        Why copies: a state kept as "best so far" must not follow later optimiser steps (D4).
        """
        return {
            mod: {k: v.detach().clone() for k, v in enc.state_dict().items()} for mod, enc in self.encoders.items()
        }
