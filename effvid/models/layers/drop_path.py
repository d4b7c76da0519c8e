"""Stochastic depth: drop a residual branch per sample during training."""

import torch
from torch import nn


class DropPath(nn.Module):
    """Zeroes the whole branch of a random subset of samples and rescales the rest.

    x: (B, ...) -> (B, ...). Identity in eval mode or when `drop_prob` is 0.
    """

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(mask_shape).bernoulli_(keep_prob)
        return x * mask / keep_prob

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
