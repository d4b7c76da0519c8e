"""Convolutions shared by the video model families, and the CPU fast paths of two 3-D convs
that PyTorch runs on its slow native kernel (`slow_conv3d`) rather than oneDNN: 1x1x1 convs at
small batch, and convs over three input channels (a stem). Each computes the same function
with the same parameters (state dicts unchanged); ONNX export traces the plain convolution."""

import torch
import torch.nn.functional as F
from torch import nn

from effvid.models.layers.memory_format import is_exporting
from effvid.models.layers.streaming import CausalConv3d


class PointwiseConv3d(nn.Conv3d):
    """A 1x1x1 conv (strided or not) as a matrix product over the channels of a channels-last
    clip (oneDNN's GEMM), which PyTorch otherwise runs on its slow native 3-D kernel at small
    batch. (B, C, T, H, W) -> (B, C', T', H', W'), channels-last out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.groups != 1 or is_exporting():
            return super().forward(x)
        if self.stride != (1, 1, 1):
            x = x[:, :, :: self.stride[0], :: self.stride[1], :: self.stride[2]]
        weight = self.weight.reshape(self.out_channels, self.in_channels)
        out = F.linear(x.permute(0, 2, 3, 4, 1), weight, self.bias)  # (B, T, H, W, C')
        return out.permute(0, 4, 1, 2, 3)


class FramewiseConv3d(nn.Conv3d):
    """A kt x kh x kw conv (temporal stride 1, 'same' time padding) computed as one 2-D conv
    over the frames, whose kt x C' output channels are each frame's contributions to its kt
    neighbours in time, then added with the shifts: oneDNN's 2-D path, where PyTorch would run
    a conv over few input channels (a stem over RGB) on its slow native 3-D kernel, and no copy
    of the input. (B, C, T, H, W) channels-last -> (B, C', T, H', W') channels-last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_exporting():
            return super().forward(x)
        batch, depth, pad = x.shape[0], self.kernel_size[0], self.padding[0]
        images = x.transpose(1, 2).flatten(0, 1)  # (B*T, C, H, W), a view of channels-last
        weight = self.weight.permute(2, 0, 1, 3, 4).flatten(0, 1)  # (kt*C', C, kh, kw)
        parts = F.conv2d(images, weight, None, self.stride[1:], self.padding[1:])
        parts = parts.unflatten(0, (batch, -1)).unflatten(2, (depth, -1))  # (B, T, kt, C', ...)
        out = parts[:, :, pad].clone()
        for i in range(depth):  # frame t gets kernel slice i from frame t + i - pad
            shift = i - pad
            if shift > 0:
                out[:, :-shift] += parts[:, shift:, i]
            elif shift < 0:
                out[:, -shift:] += parts[:, :shift, i]
        if self.bias is not None:
            out += self.bias.view(-1, 1, 1)
        return out.transpose(1, 2)


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
