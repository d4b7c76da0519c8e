"""Global pooling written as a mean, so it exports everywhere (no adaptive pooling op)."""

import torch
from torch import nn


class GlobalAvgPool(nn.Module):
    """x: (B, C, *spatial) -> (B, C), the mean over every spatial (and temporal) position."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).mean(dim=2)
