"""Multi-head attention whose heads are contiguous channel slices (the Mobile-Former convention)."""

import torch
import torch.nn.functional as F

from effvid.models.layers.memory_format import is_exporting


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, L, C) -> (B, heads, L, C / heads); head i holds channels [i*C/h, (i+1)*C/h)."""
    batch, length, channels = x.shape
    return x.view(batch, length, num_heads, channels // num_heads).transpose(1, 2)


def channel_split_attention(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """Softmax attention with `num_heads` heads taken as contiguous channel slices.

    query (B, Lq, C), key (B, Lk, C), value (B, Lk, Cv) -> (B, Lq, Cv). The scale is the
    default (C / heads) ** -0.5. The head outputs are concatenated back in head order.
    Exported graphs get the explicit product, softmax and product (`torch.export` would otherwise
    decompose the fused kernel into a masked "safe" softmax that mobile delegates do not take).
    """
    if is_exporting():
        out = channel_split_attention_weights(query, key, num_heads) @ _split_heads(
            value, num_heads
        )
    else:
        out = F.scaled_dot_product_attention(
            _split_heads(query, num_heads),
            _split_heads(key, num_heads),
            _split_heads(value, num_heads),
        )
    batch, _, length, _ = out.shape
    return out.transpose(1, 2).reshape(batch, length, -1)


def channel_split_attention_weights(
    query: torch.Tensor, key: torch.Tensor, num_heads: int
) -> torch.Tensor:
    """The attention probabilities `channel_split_attention` applies, made explicit.

    query (B, Lq, C), key (B, Lk, C) -> (B, heads, Lq, Lk); each row sums to 1 over Lk.
    For inspection (effvid.explain): the forward pass never builds this matrix.
    """
    query, key = _split_heads(query, num_heads), _split_heads(key, num_heads)
    scores = query @ key.transpose(-2, -1) * query.shape[-1] ** -0.5
    return scores.softmax(dim=-1)
