"""The CPU fast paths of 3-D convs compute what the plain convolution computes (forward and
backward, any memory layout), and keep every registered video model off PyTorch's slow native
3-D kernel."""

import pytest
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import effvid
from effvid.models.layers.convolution import FramewiseConv3d, PointwiseConv3d

LAYERS = {
    "pointwise": lambda: PointwiseConv3d(24, 40, 1, bias=True),
    "pointwise, strided": lambda: PointwiseConv3d(24, 40, 1, stride=(1, 2, 2), bias=False),
    "stem 3x3x3": lambda: FramewiseConv3d(3, 12, (3, 3, 3), stride=(1, 2, 2), padding=(1, 1, 1)),
    "stem 1x3x3": lambda: FramewiseConv3d(3, 12, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
    "stem 5x3x3, bias": lambda: FramewiseConv3d(
        3, 8, (5, 3, 3), stride=(1, 2, 2), padding=(2, 1, 1), bias=True
    ),
}


@pytest.mark.parametrize("layout", [torch.channels_last_3d, torch.contiguous_format])
@pytest.mark.parametrize("make", LAYERS.values(), ids=LAYERS.keys())
def test_fast_paths_equal_the_plain_convolution(make, layout):
    layer = make()
    x = torch.randn(2, layer.in_channels, 6, 20, 20).contiguous(memory_format=layout)
    x.requires_grad_(True)
    out = layer(x)
    expected = F.conv3d(x, layer.weight, layer.bias, layer.stride, layer.padding)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    gradient = torch.randn_like(out)
    grads = torch.autograd.grad(out, (x, layer.weight), gradient)
    expected_grads = torch.autograd.grad(expected, (x, layer.weight), gradient)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def _runs_the_slow_kernel(module: torch.nn.Module, clip: torch.Tensor) -> bool:
    """Whether a forward pass reaches PyTorch's slow native 3-D convolution on CPU."""
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as trace:
        module(clip)
    return any("slow_conv3d" in event.key for event in trace.key_averages())


def test_the_slow_kernel_is_seen_where_it_runs():
    """The check below can fail: a plain dense 3-D convolution, which takes the slow kernel, is
    seen doing so (were PyTorch to rename it, this fails rather than the check passing idly)."""
    plain = torch.nn.Conv3d(3, 8, (3, 3, 3), padding=1).eval()
    assert _runs_the_slow_kernel(plain, torch.randn(1, 3, 4, 32, 32))
    fast = FramewiseConv3d(3, 8, (3, 3, 3), padding=(1, 1, 1)).eval()
    assert not _runs_the_slow_kernel(fast, torch.randn(1, 3, 4, 32, 32))


@pytest.mark.parametrize("name", ["vmf_xxs", "x3d_xs"])
def test_video_models_stay_off_the_slow_native_kernel(name):
    model = effvid.create_model(name).eval()
    assert not _runs_the_slow_kernel(model, torch.randn(1, 3, 4, 64, 64))
