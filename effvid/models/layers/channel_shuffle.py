"""ShuffleNet-v1 channel shuffle for feature maps of any dimensionality."""

import torch
from torch import nn


class ChannelShuffle(nn.Module):
    """Regroups channels: output channel i*g + j takes input channel j*(C/g) + i.

    x: (B, C, *spatial) -> (B, C, *spatial). Written with view/transpose (not
    `nn.ChannelShuffle`) so that it traces and exports like any other reshape.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, *spatial = x.shape
        x = x.view(batch, self.groups, channels // self.groups, *spatial)
        return x.transpose(1, 2).reshape(batch, channels, *spatial)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
