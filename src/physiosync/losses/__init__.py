"""Losses: tensor-in / scalar-out contrastive functions and the PhysioSync objective over encoder outputs."""

from physiosync.losses.contrastive import nt_xent, top1_retrieval, top1_retrieval_tensor

__all__ = ["nt_xent", "top1_retrieval", "top1_retrieval_tensor"]
