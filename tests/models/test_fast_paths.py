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


@pytest.mark.parametrize("name", ["vmf_xxs", "x3d_xs"])
def test_video_models_stay_off_the_slow_native_kernel(name):
    model = effvid.create_model(name).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as trace:
        model(clip)
    assert "aten::slow_conv3d_forward" not in {event.key for event in trace.key_averages()}
