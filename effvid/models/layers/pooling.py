"""Global pooling written as a mean, so it exports everywhere (no adaptive pooling op)."""

import torch
from torch import nn

from effvid.models.layers.memory_format import is_exporting


class GlobalAvgPool(nn.Module):
    """x: (B, C, *spatial) -> (B, C), the mean over every spatial (and temporal) position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(dim=2)


def mean_over_positions(x: torch.Tensor) -> torch.Tensor:
    """x: (B, C, T, H, W) -> (B, C, 1, 1, 1), the mean over every position. Exported graphs
    compute it as a 4-D global average pool ((B, C, 1, T*H*W)), which mobile delegates take where
    they refuse a mean over a 5-D tensor; eager keeps the direct mean (no copy of a channels-last
    clip)."""
    if not is_exporting():
        return x.mean(dim=(2, 3, 4), keepdim=True)
    batch, channels = x.shape[:2]
    pooled = x.reshape(batch, channels, 1, -1).mean(dim=(-2, -1), keepdim=True)
    return pooled.reshape(batch, channels, 1, 1, 1)
