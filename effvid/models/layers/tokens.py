"""The two layouts of a Mobile-Former's global tokens: one set per sample, (B, M, D), or one set
per frame of a clip, (B, T, M, D) (Video Mobile-Former's `tokens_per_frame` ablation)."""

import torch


def is_per_frame(tokens: torch.Tensor) -> bool:
    """True for tokens per frame (B, T, M, D), False for one set per sample (B, M, D)."""
    return tokens.ndim == 4


def first_token(tokens: torch.Tensor) -> torch.Tensor:
    """Token 0, the one that drives the dynamic ReLUs and reaches the head: (B, D), or (B, T, D)
    with tokens per frame."""
    return tokens[..., 0, :]


def with_identity(tokens: torch.Tensor, identity: torch.Tensor | None) -> torch.Tensor:
    """Tokens plus their identity embedding (M, D), broadcast over batch (and frames), or the
    tokens alone when there is none (see `MobileFormer`'s `token_identity`)."""
    return tokens if identity is None else tokens + identity
