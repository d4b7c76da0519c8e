"""The two layouts of a Mobile-Former's global tokens: one set per sample, (B, M, D), or one set
per frame of a clip, (B, T, M, D) (Video Mobile-Former's `tokens_per_frame` ablation)."""

import torch
from torch.nn import functional as F


def is_per_frame(tokens: torch.Tensor) -> bool:
    """True for tokens per frame (B, T, M, D), False for one set per sample (B, M, D)."""
    return tokens.ndim == 4


def first_token(tokens: torch.Tensor) -> torch.Tensor:
    """Token 0, the one that drives the dynamic ReLUs and reaches the head: (B, D), or (B, T, D)
    with tokens per frame."""
    return tokens[..., 0, :]


def mean_pairwise_cosine(vectors: torch.Tensor) -> torch.Tensor:
    """vectors (..., M, N) -> the cosine similarity of two of the M vectors, averaged over the
    M (M - 1) / 2 pairs and the leading dims: a 0-dim tensor, differentiable (1: one vector
    repeated M times; 1 also for M = 1, nothing to tell apart)."""
    count = vectors.shape[-2]
    if count < 2:
        return vectors.new_ones(())
    unit = F.normalize(vectors.flatten(0, -3), dim=-1)
    gram = unit @ unit.transpose(1, 2)  # (sets, M, M)
    off_diagonal = gram.sum(dim=(1, 2)) - gram.diagonal(dim1=1, dim2=2).sum(dim=1)
    return (off_diagonal / (count * (count - 1))).mean()
