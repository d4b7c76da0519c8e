"""3-D convolutions computed by 2-D ones over frames: the convolution edge runtimes accelerate
(ExecuTorch's XNNPACK delegate, LiteRT and many CPU kernels run 2-D convolutions fast and 3-D
ones slowly or not at all), with the same weights and function.

Two layouts of a clip's feature map are taken: the clip itself, (B, C, T, H, W), and its frames
as images, (B * T, C, H, W), frame t of clip b at row b * T + t (the layout in which the
deployable Video Mobile-Former keeps its feature maps, every tensor at most 4-D).
"""

import torch
from torch import nn

from effvid.errors import EffvidError
from effvid.models.layers.streaming import CausalConv3d, StreamingLayer


class DeployableError(EffvidError, RuntimeError):
    """The rewritten model does not compute what the model computes, or cannot be rewritten."""


def clip_to_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B * T, C, H, W), through 4-D tensors only."""
    batch, channels, frames, height, width = x.shape
    flat = x.reshape(batch, channels, frames, height * width).permute(0, 2, 1, 3)
    return flat.reshape(batch * frames, channels, height, width)


def frames_to_clip(x: torch.Tensor, batch: int) -> torch.Tensor:
    """The inverse of `clip_to_frames`: (B * T, C, H, W) -> (B, C, T, H, W)."""
    images, channels, height, width = x.shape
    frames = images // batch
    flat = x.reshape(batch, frames, channels, height * width).permute(0, 2, 1, 3)
    return flat.reshape(batch, channels, frames, height, width)


def repeat(x: torch.Tensor, times: int, dim: int) -> torch.Tensor:
    """x repeated `times` times along `dim`, as a concatenation of distinct views of x (XNNPACK
    has no `expand`, and its concatenation counts distinct inputs only)."""
    if times == 1:
        return x
    return torch.cat([x.view(x.shape) for _ in range(times)], dim=dim)


def zero_frames(flat: torch.Tensor, count: int) -> torch.Tensor:
    """`count` zero frames for `flat` (B, T, C*H*W): (B, count, C*H*W).

    Temporal zero padding is a concatenation of these rather than a pad operator (XNNPACK cannot
    initialise an int8 constant pad of this layout), and they are the first frame times zero
    rather than a new tensor (ExecuTorch computes a new tensor outside the XNNPACK delegate)."""
    return repeat(flat[:, :1] * 0.0, count, dim=1)


class FrameConv(nn.Module):
    """A 3-D convolution as one 2-D convolution over frames, same weights and function.

    x (B, C, T, H, W) -> (B, C', T', H', W'), T' = (T + 2 pt - kt) // st + 1; `on_frames` takes
    and gives the frames layout instead, (B * T, C, H, W) -> (B * T', C', H', W'). The input is
    padded in time, the kt frames each output frame reads are stacked into the channels (input
    channel c, tap k -> c * kt + k, so that groups stay contiguous) and one Conv2d with the
    kernel (C', C/g * kt, kh, kw) runs on them, for any kernel, stride, padding and groups;
    every intermediate tensor has at most 4 dimensions.
    """

    def __init__(self, conv: nn.Conv3d) -> None:
        super().__init__()
        if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            raise DeployableError(f"cannot rewrite {conv}: only zero padding of given sizes")
        if conv.dilation[0] != 1:
            raise DeployableError(f"cannot rewrite {conv}: temporal dilation")
        self.taps, self.temporal_stride = conv.kernel_size[0], conv.stride[0]
        self.temporal_padding = conv.padding[0]
        self.conv = nn.Conv2d(
            conv.in_channels * self.taps, conv.out_channels, conv.kernel_size[1:],
            stride=conv.stride[1:], padding=conv.padding[1:], dilation=conv.dilation[1:],
            groups=conv.groups, bias=conv.bias is not None,
        )  # fmt: skip
        with torch.no_grad():
            # (C', C/g, kt, kh, kw) -> (C', C/g * kt, kh, kw): channel c, tap k -> c * kt + k
            self.conv.weight.copy_(conv.weight.flatten(1, 2))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return frames_to_clip(self.on_frames(clip_to_frames(x), x.shape[0]), x.shape[0])

    def on_frames(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        """x (B * T, C, H, W), the frames of `batch` clips -> (B * T', C', H', W')."""
        images, channels, height, width = x.shape
        taps, stride = self.taps, self.temporal_stride
        flat = x.reshape(batch, images // batch, channels * height * width)  # (B, T, C*H*W)
        if taps == 1 and self.temporal_padding == 0 and stride == 1:
            return self.conv(x)
        flat = self.pad_time(flat, (channels, height, width))
        out_frames = (flat.shape[1] - taps) // stride + 1
        span = stride * (out_frames - 1) + 1
        # tap k of output frame t is padded frame t * stride + k: channel c, tap k -> c*kt + k
        shifted = [
            flat[:, k : k + span : stride].reshape(batch * out_frames, channels, 1, -1)
            for k in range(taps)
        ]
        stacked = shifted[0] if taps == 1 else torch.cat(shifted, dim=2)
        return self.conv(stacked.reshape(batch * out_frames, channels * taps, height, width))

    def pad_time(self, flat: torch.Tensor, frame_shape: tuple[int, int, int]) -> torch.Tensor:
        """(B, T, C*H*W) -> (B, T + 2 pt, C*H*W): zero frames on both sides."""
        pad = self.temporal_padding
        return torch.cat([zero_frames(flat, pad), flat, zero_frames(flat, pad)], 1) if pad else flat


class CausalFrameConv(StreamingLayer, FrameConv):
    """A causal convolution (`CausalConv3d`) as a `FrameConv`: its kt - 1 frames of temporal
    padding are the previous chunk's last input frames when streaming (its state under the same
    `stream_key`, as 4-D frames (B * (kt - 1), C, H, W)), zeros at the start of a stream."""

    def __init__(self, conv: CausalConv3d) -> None:
        super().__init__(conv)
        self.history = conv.history
        self.stream_key = conv.stream_key

    def pad_time(self, flat: torch.Tensor, frame_shape: tuple[int, int, int]) -> torch.Tensor:
        batch, history = flat.shape[0], self.history
        past = self.past()
        if past is None:  # the start of a stream: zero history
            past = zero_frames(flat, history)
        flat = torch.cat([past.reshape(batch, history, -1), flat], dim=1)
        self.keep(flat[:, flat.shape[1] - history :].reshape(batch * history, *frame_shape))
        return flat


def frame_conv(conv: nn.Conv3d) -> FrameConv:
    """The `FrameConv` of a 3-D convolution: causal for a `CausalConv3d`."""
    return CausalFrameConv(conv) if isinstance(conv, CausalConv3d) else FrameConv(conv)
