"""PhysioSync models (method-spec §3): encoders, pre-training heads, fusion classifier (contract 3).

Models import only torch, :mod:`physiosync.data.contract` and :class:`physiosync.config.ModelConfig`; they never
know a dataset name.
"""

from physiosync.models.encoder import (
    PARITY_PREFIX,
    Block,
    Encoder,
    MultiViewEmbedding,
    build_encoder,
    is_parity_name,
    lookup_embed_dim,
)
from physiosync.models.fusion import (
    EncoderDict,
    FinetuneModel,
    FusionClassifier,
    Segment,
    encoder_key,
    plan_segments,
    resolve_resolutions,
)
from physiosync.models.heads import CrossModalHead, PretrainModel, PretrainOutputs, Projector, resolve_roles

__all__ = [
    "PARITY_PREFIX",
    "Block",
    "CrossModalHead",
    "Encoder",
    "EncoderDict",
    "FinetuneModel",
    "FusionClassifier",
    "MultiViewEmbedding",
    "PretrainModel",
    "PretrainOutputs",
    "Projector",
    "Segment",
    "build_encoder",
    "encoder_key",
    "is_parity_name",
    "lookup_embed_dim",
    "plan_segments",
    "resolve_resolutions",
    "resolve_roles",
]
