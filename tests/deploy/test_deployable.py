"""The deployable form of every VMF (and its causal variant) and X3D (BatchNorms folded, 3-D
convolutions as 2-D ones, a VMF rewritten into operations XNNPACK takes) gives the model's logits
within 1e-5, with trained-looking norm statistics."""

import pytest
import torch
from torch import nn

import effvid
from effvid.deploy.deployable import DeployableError, FrameConv, deployable
from tests.conftest import small_input

VMFS = effvid.list_models("vmf_*")
MODELS = [(name, {}) for name in VMFS + effvid.list_models("x3d_*")] + [
    (name, {"causal": True}) for name in VMFS
]
# the rungs `make test` checks; the others (20-40 s each on 2 cores) in the edge tier
EVERYDAY = {"vmf_xxs", "vmf_xs", "vmf_s", "x3d_xs", "x3d_s"}


def _cases() -> list:
    return [
        pytest.param(
            name, args, id=f"{name}{'-causal' * bool(args)}",
            marks=[] if name in EVERYDAY and not (args and name == "vmf_s") else [pytest.mark.edge],
        )
        for name, args in MODELS
    ]  # fmt: skip


def _with_norm_statistics(model: nn.Module) -> nn.Module:
    """Running statistics and affine parameters away from their initial values, as after
    training, so that folding them is not the identity."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            size = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(size, generator=generator) * 0.1)
    return model.eval()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "args"), _cases())
def test_the_deployable_form_gives_the_models_logits(name, args):
    model = _with_norm_statistics(effvid.create_model(name, num_classes=7, **args))
    clips = small_input(effvid.get_model_card(name), batch=2)
    rewritten = deployable(model, clips)
    kinds = {type(module) for module in rewritten.modules()}
    assert not kinds & {nn.Conv3d, nn.BatchNorm3d}, kinds & {nn.Conv3d, nn.BatchNorm3d}
    with torch.no_grad():
        torch.testing.assert_close(rewritten(clips), model(clips), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "groups"),
    [((3, 3, 3), (1, 1, 1), (1, 1, 1), 1), ((3, 3, 3), (2, 2, 2), (1, 0, 1), 2),
     ((5, 1, 1), (1, 1, 1), (2, 0, 0), 6), ((1, 1, 1), (1, 2, 2), (0, 0, 0), 1),
     ((2, 3, 1), (2, 1, 1), (0, 1, 0), 3)],
)  # fmt: skip
def test_a_frame_conv_is_the_3d_conv(kernel, stride, padding, groups):
    conv = nn.Conv3d(6, 12, kernel, stride=stride, padding=padding, groups=groups, bias=True)
    x = torch.randn(2, 6, 7, 9, 10)
    with torch.no_grad():
        torch.testing.assert_close(FrameConv(conv)(x), conv(x), rtol=0, atol=1e-5)


def test_a_rewrite_that_changes_the_function_is_refused(monkeypatch):
    """A mistake in the gathering (here: channels shifted by one) is caught, not exported."""
    model = effvid.create_model("x3d_xs", num_classes=3).eval()
    original = FrameConv.forward
    monkeypatch.setattr(FrameConv, "forward", lambda self, x: original(self, x.roll(1, dims=1)))
    with pytest.raises(DeployableError, match="differs from it"):
        deployable(model, small_input(effvid.get_model_card("x3d_xs"), batch=1))
