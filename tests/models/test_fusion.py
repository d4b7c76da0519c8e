"""Folding BatchNorms into convolutions for inference: every family, the same outputs, none left."""

import pytest
import torch

import effvid
from effvid.models.fusion import fold_batchnorm
from tests.conftest import reduced_model, small_input

NORMS = (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
FAMILIES = ["mobileformer_26m", "vmf_xxs", "x3d_xs", "dualformer_t"]


@pytest.mark.parametrize("name", FAMILIES)
def test_folded_copy_computes_the_same_without_batchnorms(name):
    model = reduced_model(name).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # statistics far from 0 / 1, so that a wrong fold shows
        for key, tensor in model.state_dict().items():
            if key.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif key.endswith("running_mean"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator))
    x = small_input(effvid.get_model_card(name), batch=2)
    folded = fold_batchnorm(model, x[:1])
    assert not any(isinstance(module, NORMS) for module in folded.modules())
    assert any(isinstance(module, NORMS) for module in model.modules())  # the model is kept
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)
