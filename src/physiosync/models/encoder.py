"""The PhysioSync encoder (method-spec §3.1–§3.3, §3.8): multi-view embedding + a small pre-LN transformer.

One template serves every (modality, window length): the EEG encoder has per-block prompt tokens and token
dropout, the peripheral (PPS) encoder has neither (D21: the authors define but never apply its dropout).
The representation used everywhere is the final-normalised token sequence flattened to ``(B, 4·d)`` in the
order [CLS, view1, view2, view3].

Parity modules (D20): the authors' code creates parameters that are never used in the forward pass — a
second MLP + LayerNorm ("mix-FFN") in every block from index 2 on (only the last block at the paper's depth
3) and an "other modality" prompt tensor in each EEG block. They are created only with ``ModelConfig.parity=True`` so that parameter counts equal §3.9; their
attribute names start with :data:`PARITY_PREFIX` so counting and checks can tell them apart.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from physiosync.config import ModelConfig
from physiosync.data.contract import ModalitySpec

PARITY_PREFIX = "unused_"  # attribute-name prefix of parity-only modules/parameters (never in the forward)
PARITY_MIX_FFN_FROM = 2  # D20: the authors create the unused mix-FFN in every block whose index is >= 2


def is_parity_name(name: str) -> bool:
    """True for a parameter/state-dict name that belongs to a parity-only module (D20)."""
    return any(part.startswith(PARITY_PREFIX) for part in name.split("."))


def lookup_embed_dim(cfg: ModelConfig, window_s: float) -> int:
    """Embedding dim ``d`` for a window length; config keys are strings ("1.0", "5", "5.0") or numbers.

    Why: YAML/``--set`` users write ``{1: 128}`` or ``{"1.0": 128}``; the key is matched by value.
    """
    for key, dim in cfg.embed_dim.items():
        try:
            if abs(float(key) - float(window_s)) < 1e-9:
                return int(dim)
        except (TypeError, ValueError):
            continue
    raise KeyError(f"model.embed_dim has no entry for a {window_s} s window (keys: {list(cfg.embed_dim)})")


class SliceBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` that can also normalise interleaved slices with per-slice batch statistics.

    Why: fine-tuning encodes the k consecutive 1 s slices of a 5 s sample in ONE encoder call (one big
    GEMM instead of k small ones). The authors encode each slice separately, so their BatchNorm normalises
    every slice over its own B windows and updates the running statistics k times per step, in slice
    order. :meth:`forward_slices` reproduces exactly that in one vectorised call: the slice index is folded
    into the channel axis, so one ``batch_norm`` kernel yields k·C per-slice means/variances, and the k
    running-statistic updates are then applied in slice order (each exactly as ``nn.BatchNorm1d`` would,
    including ``num_batches_tracked`` and ``momentum=None``). :meth:`forward` is plain ``BatchNorm1d``, and
    the parameters/buffers are the same, so state dicts are interchangeable with ``nn.BatchNorm1d``.
    """

    def forward_slices(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each slice ``x[:, j]`` with its own batch statistics (as k separate BN calls).

        In eval mode (running statistics) the slicing changes nothing and the plain path is used.

        Shape:
            x: (B, k, G, C) — B samples, k slices, G rows per slice and sample (e.g. tokens), C features;
            statistics of slice j are taken over its B·G rows. Returns (B, k, G, C).
        """
        b, k, g, c = x.shape
        if c != self.num_features:
            raise ValueError(f"SliceBatchNorm1d expects {self.num_features} features, got {c}")
        use_batch_stats = self.training or self.running_mean is None or self.running_var is None
        if not use_batch_stats:
            return super().forward(x.reshape(b * k * g, c)).view(b, k, g, c)
        # Channel axis = (slice, feature): one kernel, statistics per slice and feature over (B, G).
        flat = x.permute(0, 2, 1, 3).reshape(b * g, k * c)
        weight = self.weight.repeat(k) if self.weight is not None else None
        bias = self.bias.repeat(k) if self.bias is not None else None
        track = self.training and self.track_running_stats and self.running_mean is not None
        if track:
            # momentum = 1 makes the kernel write exactly the batch mean and the UNBIASED batch variance
            # (what BatchNorm folds into running_var) into these scratch buffers.
            batch_mean = torch.zeros(k * c, dtype=self.running_mean.dtype, device=x.device)
            batch_var = torch.ones(k * c, dtype=self.running_var.dtype, device=x.device)
            out = F.batch_norm(flat, batch_mean, batch_var, weight, bias, True, 1.0, self.eps)
            self._update_running_stats(batch_mean.view(k, c), batch_var.view(k, c))
        else:
            out = F.batch_norm(flat, None, None, weight, bias, True, 0.0, self.eps)
        return out.view(b, g, k, c).permute(0, 2, 1, 3)

    @torch.no_grad()
    def _update_running_stats(self, means: torch.Tensor, unbiased_vars: torch.Tensor) -> None:
        """k sequential BatchNorm updates in slice order (``means``/``unbiased_vars``: (k, C))."""
        for mean, var in zip(means, unbiased_vars, strict=True):
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else float(self.momentum)
            self.running_mean.mul_(1.0 - factor).add_(mean, alpha=factor)
            self.running_var.mul_(1.0 - factor).add_(var, alpha=factor)


class MultiViewEmbedding(nn.Module):
    """Multi-view embedding (§3.1): V tokens = one shared linear value gated by V sigmoid gates, then BN.

    The value map A: F → d and the gate map G: F → V·d are stored as ONE linear layer F → (1+V)·d (rows
    ``[:d]`` are A, rows ``[d:]`` are G): one GEMM instead of two for the largest weight of the model, with
    exactly the same parameters and maths.

    With ``n_slices = k > 1`` the rows are k interleaved groups (row ``i·k + j`` = slice j of sample i) and
    the BatchNorm takes per-slice batch statistics (:class:`SliceBatchNorm1d`), as if each slice had been
    embedded in its own call.

    Shape:
        input: (B, F) flattened window; output: (B, V, d).
    """

    def __init__(self, n_features: int, dim: int, n_views: int) -> None:
        super().__init__()
        self.dim, self.n_views = dim, n_views
        self.proj = nn.Linear(n_features, (1 + n_views) * dim)
        self.norm = SliceBatchNorm1d(dim)  # statistics over batch × views (tokens folded into the batch)

    def forward(self, x: torch.Tensor, n_slices: int = 1) -> torch.Tensor:
        """Shape: x (B, F) -> (B, V, d); B must be a multiple of ``n_slices``."""
        b = x.shape[0]
        value, gates = self.proj(x).split([self.dim, self.n_views * self.dim], dim=-1)
        tokens = value.unsqueeze(1) * torch.sigmoid(gates).view(b, self.n_views, self.dim)
        if n_slices == 1:
            return self.norm(tokens.reshape(b * self.n_views, self.dim)).view(b, self.n_views, self.dim)
        grouped = tokens.view(b // n_slices, n_slices, self.n_views, self.dim)
        return self.norm.forward_slices(grouped).reshape(b, self.n_views, self.dim)


class BiasPerCallLinear(nn.Linear):
    """A bias-free ``nn.Linear`` whose forward takes the bias as an argument (the attention's qkv).

    The attention's bias ``[q_bias, 0, v_bias]`` is assembled from two parameters and a fixed zero, so it
    cannot be the layer's own parameter; calling the module (rather than ``F.linear`` on its weight) keeps
    every GEMM of the model a module call, which is what :mod:`physiosync.training.precision` switches.
    The state dict is that of ``nn.Linear(in, out, bias=False)``.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        return F.linear(x, self.weight, bias)


class Attention(nn.Module):
    """Multi-head self-attention with a bias-free qkv linear plus bias ``[q_bias, 0, v_bias]`` (§3.2).

    Optional ``shared`` tokens (the block's prompts, the same for every sample) are extra keys/values
    only: outputs of appended prompt tokens are discarded by the block anyway, and since a prompt token is
    a parameter (and LayerNorm acts per token), its key and value are the same in every sample — so they
    are computed once, not once per sample, and broadcast (same maths; at the fine-tuning batch this is a
    third of the EEG encoders' qkv FLOPs). The softmax is the one inside ``scaled_dot_product_attention``:
    in float32 inputs it is exact float32; in bf16 the fused kernels accumulate logits and softmax in
    float32 too (the spec's "softmax in float32").
    """

    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"embedding dim {dim} is not divisible by {n_heads} heads")
        self.n_heads = n_heads
        self.qkv = BiasPerCallLinear(dim, 3 * dim)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("k_bias", torch.zeros(dim), persistent=False)  # key bias is fixed at 0
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, shared: torch.Tensor | None = None) -> torch.Tensor:
        """Shape: x (B, N, d), shared (1, P, d) or None -> (B, N, d); keys/values use all N + P tokens."""
        b, n, d = x.shape
        h = self.n_heads
        bias = torch.cat((self.q_bias, self.k_bias, self.v_bias))
        rows = x.reshape(b * n, d)
        if shared is not None:  # one GEMM for the samples' tokens and the P shared ones
            rows = torch.cat((rows, shared.reshape(-1, d)))
        qkv = self.qkv(rows, bias)
        own = qkv[: b * n].view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)  # (3, B, heads, N, d/heads)
        q, k, v = own[0], own[1], own[2]
        if shared is not None:
            p = shared.shape[-2]
            extra = qkv[b * n :].view(1, p, 3, h, d // h).permute(2, 0, 3, 1, 4).expand(3, b, h, p, d // h)
            k = torch.cat((k, extra[1]), dim=2)
            v = torch.cat((v, extra[2]), dim=2)
        out = F.scaled_dot_product_attention(q, k, v)  # default scale (d/heads)^-1/2, no mask, no dropout
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def _make_mlp(dim: int, hidden: int) -> nn.Sequential:
    # D21: ReLU after BOTH layers (the authors' GELU argument is ignored); kept for faithfulness.
    return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.ReLU())


class Block(nn.Module):
    """Pre-LN transformer block with layer scale and optional per-block prompt tokens (§3.2).

    Prompts are appended at the end of the sequence as extra keys/values and dropped after the block, so
    the MLP and the attention queries are computed for the carried tokens only, and the prompts' keys and
    values once for the batch (:class:`Attention`; identical maths).

    Args:
        dim: Token width d.
        n_heads: Attention heads (head dim d / n_heads).
        mlp_ratio: MLP hidden width = mlp_ratio · d.
        layer_scale_init: Initial value of the layer-scale vectors γ₁, γ₂.
        n_prompts: Prompt tokens of this block (0 = none, the PPS encoder).
        parity_mix_ffn: Create the unused "mix-FFN" (MLP + LayerNorm) of the authors' blocks >= 2 (D20).
        parity_other_prompt: Create the unused "other modality" prompt tensor of EEG blocks (D20).
    """

    def __init__(
        self,
        dim: int,
        n_heads: int,
        mlp_ratio: float = 4.0,
        layer_scale_init: float = 0.1,
        n_prompts: int = 0,
        parity_mix_ffn: bool = False,
        parity_other_prompt: bool = False,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, n_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _make_mlp(dim, hidden)
        self.gamma_1 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        self.gamma_2 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        self.prompts = nn.Parameter(torch.empty(1, n_prompts, dim)) if n_prompts > 0 else None
        if self.prompts is not None:
            nn.init.trunc_normal_(self.prompts, std=0.02)
        if parity_other_prompt and n_prompts > 0:
            self.unused_prompts_other = nn.Parameter(torch.empty(1, n_prompts, dim))
            nn.init.trunc_normal_(self.unused_prompts_other, std=0.02)
        if parity_mix_ffn:
            self.unused_mix_norm = nn.LayerNorm(dim)
            self.unused_mix_mlp = _make_mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shape: x (B, N, d) -> (B, N, d)."""
        shared = None if self.prompts is None else self.norm1(self.prompts)  # (1, P, d); LayerNorm is per token
        x = x + self.gamma_1 * self.attn(self.norm1(x), shared)
        return x + self.gamma_2 * self.mlp(self.norm2(x))


class Encoder(nn.Module):
    """MVE → CLS + type + position embeddings → token dropout → blocks → LayerNorm → flatten (§3.2).

    Args:
        n_chans: Channels of the input window.
        n_times: Samples of the input window.
        dim: Token width d (depends on the window length, §3.3).
        cfg: Model configuration (depth, heads, views, MLP ratio, layer scale, parity).
        prompts: True for the EEG encoder (prompt tokens, token dropout); False for the PPS encoder.
    """

    def __init__(self, n_chans: int, n_times: int, dim: int, cfg: ModelConfig, prompts: bool) -> None:
        super().__init__()
        self.n_chans, self.n_times, self.dim, self.n_views = n_chans, n_times, dim, cfg.n_views
        self.mve = MultiViewEmbedding(n_chans * n_times, dim, cfg.n_views)
        self.cls_token = nn.Parameter(torch.empty(1, 1, dim))
        self.type_embed = nn.Parameter(torch.empty(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.empty(1, cfg.n_views + 1, dim))
        # D21: the PPS encoder's dropout is never applied by the authors, so it is an Identity here.
        self.token_dropout = nn.Dropout(cfg.eeg_token_dropout) if prompts else nn.Identity()
        n_prompts = cfg.n_prompts if prompts else 0
        self.blocks = nn.ModuleList(
            Block(
                dim,
                cfg.n_heads,
                cfg.mlp_ratio,
                cfg.layer_scale_init,
                n_prompts=n_prompts,
                parity_mix_ffn=cfg.parity and i >= PARITY_MIX_FFN_FROM,
                parity_other_prompt=cfg.parity,
            )
            for i in range(cfg.depth)
        )
        self.norm = nn.LayerNorm(dim)
        self._init_faithful()

    @property
    def out_dim(self) -> int:
        """Size of the flattened representation: (1 + n_views) · d."""
        return (1 + self.n_views) * self.dim

    def _init_faithful(self) -> None:
        # §3.8: the authors' custom init ran before the blocks existed, so it reached only the MVE linear
        # and the final LayerNorm; blocks keep PyTorch defaults. Embeddings: trunc-normal std 0.02.
        nn.init.trunc_normal_(self.mve.proj.weight, std=0.02)
        nn.init.zeros_(self.mve.proj.bias)
        nn.init.ones_(self.norm.weight)
        nn.init.zeros_(self.norm.bias)
        for p in (self.cls_token, self.type_embed, self.pos_embed):
            nn.init.trunc_normal_(p, std=0.02)

    def forward_features(self, x: torch.Tensor, n_slices: int = 1) -> torch.Tensor:
        """Encode windows into the flattened representation.

        Args:
            x: The windows.
            n_slices: k > 1 when the rows are k interleaved slices of B/k longer samples (row ``i·k + j`` =
                slice j of sample i): in training mode the embedding's BatchNorm then uses per-slice batch
                statistics and k running-stat updates, exactly as k separate calls would. The only other
                batch-coupled op, token dropout, draws independent elements either way; LayerNorm and
                attention act within one window.

        Shape:
            x: (B, n_chans, n_times) or (B, 1, n_chans, n_times); returns (B, 4·d) = [CLS, view1..3].
        """
        if x.dim() == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 3 or x.shape[1] != self.n_chans or x.shape[2] != self.n_times:
            raise ValueError(
                f"encoder expects (B, {self.n_chans}, {self.n_times}) windows, got {tuple(x.shape)}"
            )
        b = x.shape[0]
        if n_slices < 1 or b % n_slices:
            raise ValueError(f"encoder got {b} windows, not a multiple of n_slices = {n_slices}")
        tokens = self.mve(x.reshape(b, self.n_chans * self.n_times), n_slices)
        tokens = torch.cat((self.cls_token.expand(b, -1, -1), tokens), dim=1)
        tokens = self.token_dropout(tokens + self.type_embed + self.pos_embed)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`forward_features` (the encoder has no head of its own)."""
        return self.forward_features(x)


def build_encoder(spec: ModalitySpec, window_s: float, cfg: ModelConfig) -> Encoder:
    """Encoder for one modality at one window length; prompts and token dropout only for role "eeg"."""
    return Encoder(
        n_chans=spec.n_chans,
        n_times=spec.n_times(window_s),
        dim=lookup_embed_dim(cfg, window_s),
        cfg=cfg,
        prompts=spec.role == "eeg",
    )
