"""Pre-training heads and the pre-training model (method-spec §3.4, §3.5).

The projector feeds the temporal (LS-TCL) loss; the cross-modal head, shared by both modalities, feeds the
CM-CA loss. :class:`PretrainModel` holds one encoder + projector per modality at ONE window length plus the
shared cross-modal head; the losses (``physiosync.losses.contrastive``) decide how they are combined.
"""

from __future__ import annotations

from collections.abc import Sequence

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
