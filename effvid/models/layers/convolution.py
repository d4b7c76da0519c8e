"""Convolution builders shared by the video model families."""

from torch import nn

from effvid.models.layers.streaming import CausalConv3d


def video_conv(
    in_channels: int,
    out_channels: int,
    kernel: tuple[int, int, int],
    *,
    stride: tuple[int, int, int] = (1, 1, 1),
    groups: int = 1,
    causal: bool = False,
) -> nn.Conv3d:
    """A kt x kh x kw conv without bias, 'same' padding; `causal`: all kt - 1 frames of temporal
    padding on the past side (`CausalConv3d`, stride 1 in time). (B, C, T, H, W) -> (B, C', T',
    H', W')."""
    if causal and kernel[0] > 1:
        padding = (0, kernel[1] // 2, kernel[2] // 2)
        return CausalConv3d(
            in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups,
            bias=False,
        )  # fmt: skip
    padding = tuple(size // 2 for size in kernel)
    return nn.Conv3d(
        in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups,
        bias=False,
    )  # fmt: skip


def temporal_depthwise_conv(channels: int, kernel: int, *, causal: bool = False) -> nn.Conv3d:
    """A depthwise kt x 1 x 1 conv along time, no bias, 'same' (or causal) padding.
    (B, C, T, H, W) -> (B, C, T, H, W)."""
    return video_conv(channels, channels, (kernel, 1, 1), groups=channels, causal=causal)
