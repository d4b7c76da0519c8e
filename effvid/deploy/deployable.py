"""The deployable form of a model: the same function in operations that edge runtimes
accelerate, built from the same weights.

Mobile runtimes (ExecuTorch's XNNPACK delegate, LiteRT) and many CPU kernels run 2-D
convolutions fast and 3-D ones slowly or not at all, and some mobile delegates refuse tensors of
more than 4 dimensions. `deployable(model, example)` returns a copy in which

- every BatchNorm that follows a convolution is folded into it (`effvid.models.fusion`);
- every 3-D convolution is computed by one 2-D convolution over frames (`FrameConv`,
  `effvid.deploy.frame_conv`), for any kernel, stride, padding and groups;
- a Video Mobile-Former, causal or not, is rewritten whole (`effvid.deploy.deployable_vmf`):
  feature maps as frames (B * T, C, H, W), attention as batched matrix products, LayerNorm and
  the dynamic ReLUs in operations XNNPACK takes, every tensor at most 4-D;

and checks on `example` that it gives the model's outputs (fp32, within `tolerance`). The
rewrite changes the order of the additions only; the tests hold every registered VMF (and its
causal variant) and X3D to 1e-5 on their logits. ExecuTorch's XNNPACK delegate takes the whole
deployable form of each (benchmarks/executorch_lowering.py).

    rewritten = deployable(model, example)      # clips (B, 3, T, H, W) -> logits (B, K)
    torch.export.export(rewritten, (example,))  # then to_edge_transform_and_lower(...)

The streaming step of a causal VMF has its own deployable form
(`effvid.deploy.deployable_stream.deployable_stream_step`).
"""

import torch
from torch import nn

from effvid.deploy.deployable_vmf import deployable_vmf
from effvid.deploy.frame_conv import DeployableError, FrameConv
from effvid.models.fusion import fold_batchnorm
from effvid.models.layers.convolution import FramewiseConv3d, PointwiseConv3d
from effvid.models.video_mobile_former import VideoMobileFormer

__all__ = ["DEFAULT_TOLERANCE", "DeployableError", "FrameConv", "deployable"]

DEFAULT_TOLERANCE = 1e-5


# The convolutions rewritten in other models: plain 3-D ones and effvid's eager fast paths of
# them, whose function is the convolution itself (a VMF's, causal ones too, by deployable_vmf).
REWRITTEN = (nn.Conv3d, FramewiseConv3d, PointwiseConv3d)


def _rewrite_convs(model: nn.Module) -> None:
    for name, module in list(model.named_modules()):
        if type(module) in REWRITTEN:
            model.set_submodule(name, FrameConv(module))


def deployable(
    model: nn.Module, example: torch.Tensor, *, tolerance: float = DEFAULT_TOLERANCE
) -> nn.Module:
    """A copy of `model` in eval mode with BatchNorms folded and 3-D convolutions as 2-D ones,
    a Video Mobile-Former rewritten whole (see the module docstring), checked on `example` (an
    input of the model) to give the model's outputs within `tolerance`; DeployableError
    otherwise."""
    model = model.eval()
    rewritten = fold_batchnorm(model, example)  # a copy
    if isinstance(rewritten, VideoMobileFormer):
        rewritten = deployable_vmf(rewritten)
    else:
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
