"""Convolution builders shared by the video model families."""

from torch import nn


def temporal_depthwise_conv(channels: int, kernel: int) -> nn.Conv3d:
    """A depthwise kt x 1 x 1 conv along time, no bias, 'same' padding.
    (B, C, T, H, W) -> (B, C, T, H, W)."""
    return nn.Conv3d(
        channels, channels, (kernel, 1, 1), padding=(kernel // 2, 0, 0), groups=channels, bias=False
    )
