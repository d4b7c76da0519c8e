"""X3D against PyTorchVideo: state-dict manifests (checkpoint compatibility), FLOPs, parity.

Reference data: `../shared/reference/x3d/` (generated with PyTorchVideo's hub builders).
"""

import json

import pytest
import torch
from safetensors.torch import load_file

import effvid

VARIANTS = ("xs", "s", "m")


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_params_and_flops_equal_pytorchvideo(reference_dir, variant):
    manifest = json.loads((reference_dir / "x3d" / f"manifest_x3d_{variant}.json").read_text())
    with torch.device("meta"):
        model = effvid.create_model(f"x3d_{variant}")
    shapes = {key: list(tensor.shape) for key, tensor in model.state_dict().items()}
    assert list(shapes) == list(manifest["keys"])
    assert shapes == manifest["keys"]
    assert effvid.count_params(model) == manifest["params"] == 3_794_274
    flops = effvid.count_flops(model, manifest["input_shape"])
    assert flops.total == pytest.approx(manifest["fvcore_flops"], rel=0.01)
    published = {"xs": 0.60e9, "s": 1.96e9, "m": 4.73e9}[variant]
    assert flops.by_type["conv"] + flops.by_type["linear"] == pytest.approx(published, rel=0.01)


def test_outputs_match_pytorchvideo(reference_dir):
    folder = reference_dir / "x3d"
    reference = load_file(folder / "x3d_xs_io.safetensors")
    model = effvid.create_model("x3d_xs", num_classes=10)
    effvid.load_checkpoint(model, folder / "x3d_xs_state_dict.safetensors")
    with torch.no_grad():
        logits = model.eval()(reference["input"])
    # PyTorchVideo's hub model ends with a softmax; effvid returns logits.
    assert (logits.softmax(dim=-1) - reference["logits"]).abs().max() < 1e-5


def test_initialisation_follows_pytorchvideo_each_residual_branch_starts_at_zero():
    """PyTorchVideo zero-initialises the last BatchNorm of every bottleneck (`block_final_bn`,
    `init_net_weights`), so each residual block starts as the identity; every other BatchNorm
    starts at weight 1, bias 0."""
    model = effvid.create_model("x3d_xs")
    finals = {id(block.branch2.norm_c) for stage in model.blocks[1:5] for block in stage.res_blocks}
    assert len(finals) == 3 + 5 + 11 + 7
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm3d):
            expected = 0.0 if id(module) in finals else 1.0
            assert torch.all(module.weight == expected) and torch.all(module.bias == 0)
