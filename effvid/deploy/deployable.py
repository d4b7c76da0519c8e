"""The deployable form of a model: the same function in operations that edge runtimes
accelerate, built from the same weights.

Mobile runtimes (ExecuTorch's XNNPACK delegate, LiteRT) and many CPU kernels run 2-D
convolutions fast and 3-D ones slowly or not at all. `deployable(model, example)` returns a
copy in which

- every BatchNorm that follows a convolution is folded into it (`effvid.models.fusion`);
- every 3-D convolution is computed by one 2-D convolution (`FrameConv`): the kt frames each
  output frame reads are gathered into the channels (input channel c, tap k -> c * kt + k, so
  that groups stay contiguous) and the kernel reshaped to match, for any kernel, stride,
  padding and groups;

and checks on `example` that it gives the model's outputs (fp32, within `tolerance`). The
rewrite changes the order of the additions only; the tests hold every registered VMF and X3D to
1e-5 on their logits. The causal convolutions of a streaming VMF (`CausalConv3d`, which carry
their past frames) are left as 3-D convolutions.
"""

import torch
import torch.nn.functional as F
from torch import nn

from effvid.errors import EffvidError
from effvid.models.fusion import fold_batchnorm
from effvid.models.layers.convolution import FramewiseConv3d, PointwiseConv3d

DEFAULT_TOLERANCE = 1e-5


class DeployableError(EffvidError, RuntimeError):
    """The rewritten model does not compute what the model computes."""


class FrameConv(nn.Module):
    """A 3-D convolution as one 2-D convolution over frames, same weights and function.

    x (B, C, T, H, W) -> (B, C', T', H', W'), T' = (T + 2 pt - kt) // st + 1: the input is
    padded in time, the kt frames of each output frame are stacked into the channels
    ((B * T', C * kt, H, W)), and one Conv2d with the kernel (C', C/g * kt, kh, kw) runs on them;
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
        batch, channels, frames, height, width = x.shape
        taps, stride, pad = self.taps, self.temporal_stride, self.temporal_padding
        # 4-D tensors only (mobile delegates refuse more): (B, T, C, H*W), then (B, T, C*H*W)
        flat = x.reshape(batch, channels, frames, height * width).permute(0, 2, 1, 3)
        if taps == 1 and pad == 0:
            if stride > 1:
                flat = flat[:, ::stride]
            out_frames = flat.shape[1]
            images = flat.reshape(batch * out_frames, channels, height, width)
        else:
            flat = F.pad(flat.reshape(batch, frames, -1), (0, 0, pad, pad))
            out_frames = (frames + 2 * pad - taps) // stride + 1
            span = stride * (out_frames - 1) + 1
            # tap k of output frame t is input frame t * stride + k: channel c, tap k -> c*kt + k
            shifted = [
                flat[:, k : k + span : stride].reshape(batch * out_frames, channels, 1, -1)
                for k in range(taps)
            ]
            images = torch.cat(shifted, dim=2).reshape(
                batch * out_frames, channels * taps, height, width
            )
        out = self.conv(images)  # (B * T', C', H', W')
        _, out_channels, out_height, out_width = out.shape
        out = out.reshape(batch, out_frames, out_channels, out_height * out_width)
        return out.permute(0, 2, 1, 3).reshape(
            batch, out_channels, out_frames, out_height, out_width
        )


# The convolutions rewritten: plain 3-D ones and effvid's eager fast paths of them, whose
# function is the convolution itself; a causal conv has a forward of its own and is kept.
REWRITTEN = (nn.Conv3d, FramewiseConv3d, PointwiseConv3d)


def _rewrite_convs(model: nn.Module) -> None:
    for name, module in list(model.named_modules()):
        if type(module) in REWRITTEN:
            model.set_submodule(name, FrameConv(module))


def deployable(
    model: nn.Module, example: torch.Tensor, *, tolerance: float = DEFAULT_TOLERANCE
) -> nn.Module:
    """A copy of `model` in eval mode with BatchNorms folded and 3-D convolutions as 2-D ones
    (see the module docstring), checked on `example` (an input of the model) to give the
    model's outputs within `tolerance`; DeployableError otherwise."""
    model = model.eval()
    rewritten = fold_batchnorm(model, example)  # a copy
    _rewrite_convs(rewritten)
    with torch.no_grad():
        expected, got = model(example), rewritten(example)
    worst = float((expected - got).abs().max())
    if not worst <= tolerance:
        raise DeployableError(
            f"the deployable form of {getattr(model, 'model_name', type(model).__name__)} "
            f"differs from it by {worst:.2e} (tolerance {tolerance:.0e})"
        )
    return rewritten
