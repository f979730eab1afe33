"""Confidence-weighted hierarchical fusion for fine-tuning (method-spec §3.6, §3.7, §6).

For each modality (EEG first, then the peripheral unless ``fusion="eeg-only"``) the longest window is
encoded whole and every shorter resolution encodes its consecutive slices of that window. Every feature
vector f is scaled by its confidence c(f) = max_k softmax(H_r(f))_k, where H_r is one linear head per
resolution shared by modalities and slices (no auxiliary loss, D22), and the scaled features are
concatenated in the order [mod1@longest, mod1 slices of the next resolution ..., mod2@longest, ...]
(DEAP default [E5, s1..s5, G5, r1..r5] = 10240-d) and classified by an MLP.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from physiosync.config import ModelConfig
from physiosync.data.contract import DataContract, ModalitySpec
from physiosync.models.encoder import Encoder, build_encoder, is_parity_name, lookup_embed_dim


def encoder_key(modality: str, window_s: float) -> str:
    """Public key of a fine-tuning encoder, e.g. ``"eeg@5.0"`` (contract 3)."""
    return f"{modality}@{float(window_s)}"


def window_key(window_s: float) -> str:
    """Module-name-safe key of a window length ("1.0" → "1_0"): torch forbids "." in module names."""
    return str(float(window_s)).replace(".", "_")


class EncoderDict(nn.ModuleDict):
    """``ModuleDict`` addressed by ``"eeg@5.0"``; stored as ``"eeg@5_0"`` because torch forbids "."."""

    @staticmethod
    def _safe(key: str) -> str:
        return key.replace(".", "_")

    def __getitem__(self, key: str) -> nn.Module:
        return super().__getitem__(self._safe(key))

    def __setitem__(self, key: str, module: nn.Module) -> None:
        super().__setitem__(self._safe(key), module)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(self._safe(key))


@dataclass(frozen=True)
class Segment:
    """One block of the fused feature vector: a modality at a resolution, ``n_slices`` vectors of ``dim``."""

    modality: str
    window_s: float
    n_slices: int
    dim: int

    @property
    def size(self) -> int:
        return self.n_slices * self.dim


def resolve_resolutions(contract: DataContract, cfg: ModelConfig) -> list[float]:
    """Resolutions fused by the classifier, longest first (``cfg.resolutions`` or all contract windows)."""
    res = cfg.resolutions if cfg.resolutions is not None else list(contract.window_s)
    if not res:
        raise ValueError("model.resolutions must name at least one window length")
    return sorted({float(r) for r in res}, reverse=True)


def fused_modalities(contract: DataContract, cfg: ModelConfig) -> list[ModalitySpec]:
    """Modalities whose features reach the classifier: EEG first, then the peripheral (cross-modal)."""
    mods = [contract.eeg]
    if cfg.fusion == "cross-modal" and contract.peripheral is not None:
        mods.append(contract.peripheral)
    return mods


def plan_segments(contract: DataContract, cfg: ModelConfig) -> list[Segment]:
    """Layout of the fused feature vector (order of concatenation and slice counts)."""
    res = resolve_resolutions(contract, cfg)
    longest = res[0]
    segments = []
    for spec in fused_modalities(contract, cfg):
        n_long = spec.n_times(longest)
        for r in res:
            n_short = spec.n_times(r)
            if n_long % n_short:
                raise ValueError(f"{spec.name}: a {r} s window does not tile the {longest} s window")
            dim = (1 + cfg.n_views) * lookup_embed_dim(cfg, r)
            segments.append(Segment(spec.name, r, n_long // n_short, dim))
    return segments


class FusionClassifier(nn.Module):
    """Confidence heads (one per resolution) + MLP 256 → BN → ReLU → 128 → BN → ReLU → Dropout → K.

    Args:
        contract: Data contract (modalities, window lengths).
        cfg: Model configuration (resolutions, fusion, widths, confidence weighting).
        n_classes: K (2 for arousal/valence, 4 for the four-class task).
    """

    def __init__(self, contract: DataContract, cfg: ModelConfig, n_classes: int) -> None:
        super().__init__()
        self.segments = plan_segments(contract, cfg)
        self.confidence_weighting = cfg.confidence_weighting
        self.n_classes = n_classes
        dims = {seg.window_s: seg.dim for seg in self.segments}
        # Heads exist even with confidence_weighting=False so parameter counts and checkpoints keep one shape.
        self.confidence_heads = nn.ModuleDict({window_key(r): nn.Linear(d, n_classes) for r, d in dims.items()})
        layers: list[nn.Module] = []
        width = self.in_dim
        for hidden in cfg.classifier_hidden:
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]
            width = hidden
        layers += [nn.Dropout(cfg.classifier_dropout), nn.Linear(width, n_classes)]
        self.mlp = nn.Sequential(*layers)

    @property
    def in_dim(self) -> int:
        """Width of the concatenated fused feature vector (DEAP default 10240, DREAMER 1024)."""
        return sum(seg.size for seg in self.segments)

    def confidence(self, window_s: float, features: torch.Tensor) -> torch.Tensor:
        """Max-softmax confidence of each feature vector, in [1/K, 1]; gradients flow through it.

        Shape:
            features: (..., dim); returns (...).
        """
        if not self.confidence_weighting:
            return features.new_ones(features.shape[:-1])
        logits = self.confidence_heads[window_key(window_s)](features)
        return torch.softmax(logits.float(), dim=-1).amax(dim=-1).to(features.dtype)

    def fuse(self, features: dict[tuple[str, float], torch.Tensor]) -> torch.Tensor:
        """Scale every feature by its confidence and concatenate in segment order.

        Shape:
            features[(mod, window_s)]: (B, n_slices, dim); returns (B, in_dim).
        """
        parts = []
        for seg in self.segments:
            f = features[(seg.modality, seg.window_s)]
            parts.append((f * self.confidence(seg.window_s, f).unsqueeze(-1)).flatten(1))
        return torch.cat(parts, dim=1)

    def forward_head(self, fused: torch.Tensor) -> torch.Tensor:
        """Shape: fused (B, in_dim) -> logits (B, K)."""
        return self.mlp(fused)

    def forward(self, features: dict[tuple[str, float], torch.Tensor]) -> torch.Tensor:
        """Shape: features[(mod, window_s)] (B, n_slices, dim) -> logits (B, K)."""
        return self.forward_head(self.fuse(features))


class FinetuneModel(nn.Module):
    """Encoders for every fused (modality, resolution) + the fusion classifier (§3.6/§3.7, §5.1).

    In training mode the BatchNorm of a shorter resolution's encoder normalises each slice position over
    its own B windows, with one running-statistics update per slice (``cfg.slice_batchnorm="per-slice"``,
    the authors' behaviour: they encode every slice in a separate call), while all slices still go through
    one batched encoder call. ``"pooled"`` normalises over all k·B slices with one update per step.

    Attributes:
        encoders: :class:`EncoderDict` addressed by ``"eeg@5.0"`` etc.
        classifier: The :class:`FusionClassifier`.
        resolutions: Window lengths, longest first.
        slice_batchnorm: ``"per-slice"`` or ``"pooled"`` (see above).
    """

    def __init__(self, contract: DataContract, cfg: ModelConfig, n_classes: int) -> None:
        super().__init__()
        self.resolutions = resolve_resolutions(contract, cfg)
        self.longest = self.resolutions[0]
        self.specs = {s.name: s for s in fused_modalities(contract, cfg)}
        self.slice_batchnorm = cfg.slice_batchnorm
        self.classifier = FusionClassifier(contract, cfg, n_classes)
        self.encoders = EncoderDict(
            {
                encoder_key(seg.modality, seg.window_s): build_encoder(self.specs[seg.modality], seg.window_s, cfg)
                for seg in self.classifier.segments
            }
        )

    def encoder(self, modality: str, window_s: float) -> Encoder:
        return self.encoders[encoder_key(modality, window_s)]  # type: ignore[return-value]

    def encode(self, batch: dict[str, torch.Tensor]) -> dict[tuple[str, float], torch.Tensor]:
        """Features of every (modality, resolution); shorter resolutions in ONE call over all slices.

        The call is batched either way; ``slice_batchnorm`` decides whether its BatchNorm statistics are per
        slice position (as slice-by-slice calls) or pooled over all slices.

        Shape:
            batch[mod]: (B, n_chans, n_times of the longest window);
            returns {(mod, window_s): (B, n_slices, 4·d)}.
        """
        out = {}
        for seg in self.classifier.segments:
            spec = self.specs[seg.modality]
            x = batch[seg.modality]
            if x.dim() == 4 and x.shape[1] == 1:
                x = x[:, 0]
            n_long = spec.n_times(self.longest)
            if x.dim() != 3 or x.shape[1:] != (spec.n_chans, n_long):
                raise ValueError(
                    f"batch[{seg.modality!r}] must be (B, {spec.n_chans}, {n_long}) "
                    f"({self.longest} s windows), got {tuple(x.shape)}"
                )
            b, c, _ = x.shape
            n_short = n_long // seg.n_slices
            # (B, C, k·T) -> (B, C, k, T) -> (B, k, C, T) -> (B·k, C, T): slice j of sample i is row i·k + j.
            windows = x.reshape(b, c, seg.n_slices, n_short).transpose(1, 2).reshape(b * seg.n_slices, c, n_short)
            n_groups = seg.n_slices if self.slice_batchnorm == "per-slice" else 1
            feats = self.encoder(seg.modality, seg.window_s).forward_features(windows, n_slices=n_groups)
            out[(seg.modality, seg.window_s)] = feats.view(b, seg.n_slices, -1)
        return out

    def forward_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenated confidence-scaled features. Shape: batch[mod] (B, C, T_longest) -> (B, in_dim)."""
        return self.classifier.fuse(self.encode(batch))

    def forward_head(self, fused: torch.Tensor) -> torch.Tensor:
        """Shape: fused (B, in_dim) -> logits (B, K)."""
        return self.classifier.forward_head(fused)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Shape: batch[mod] (B, C, T_longest) -> logits (B, K)."""
        return self.forward_head(self.forward_features(batch))

    @torch.no_grad()
    def confidences(self, batch: dict[str, torch.Tensor]) -> dict[tuple[str, float], torch.Tensor]:
        """Confidence factors per (modality, resolution). Shape: returns {(mod, w): (B, n_slices)}."""
        return {key: self.classifier.confidence(key[1], f) for key, f in self.encode(batch).items()}

    def load_encoders(self, states: dict[tuple[str, float], dict[str, torch.Tensor]]) -> list[tuple[str, float]]:
        """Load pre-trained encoder weights; every encoder of this model must be covered.

        Entries for encoders this model does not have (the peripheral under ``fusion="eeg-only"``, a
        resolution not fused) are skipped. Parity-only tensors (D20) are tolerated in either direction
        because they never enter the forward pass; any other missing/unexpected key or shape mismatch
        raises ``ValueError`` naming the encoder and the tensor.

        Returns:
            The (modality, window_s) keys that were loaded.
        """
        wanted = {(seg.modality, seg.window_s) for seg in self.classifier.segments}
        given = {(mod, float(w)): sd for (mod, w), sd in states.items()}
        missing = sorted(wanted - set(given))
        if missing:
            raise ValueError(f"no pre-trained state for encoder(s) {[encoder_key(*k) for k in missing]}")
        loaded = []
        for key in sorted(wanted):
            enc = self.encoder(*key)
            own = enc.state_dict()
            src = {k: v for k, v in given[key].items() if k in own or not is_parity_name(k)}
            for k, v in own.items():
                if k not in src and is_parity_name(k):
                    src[k] = v
            for k, v in src.items():
                if k in own and tuple(own[k].shape) != tuple(v.shape):
                    raise ValueError(
                        f"encoder {encoder_key(*key)}: tensor {k!r} has shape {tuple(v.shape)} in the "
                        f"pre-trained state, expected {tuple(own[k].shape)} (different model config?)"
                    )
            result = enc.load_state_dict(src, strict=False)
            if result.missing_keys or result.unexpected_keys:
                raise ValueError(
                    f"encoder {encoder_key(*key)}: missing {result.missing_keys}, "
                    f"unexpected {result.unexpected_keys} in the pre-trained state"
                )
            loaded.append(key)
        return loaded
