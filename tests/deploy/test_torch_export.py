"""`torch.export` (where ExecuTorch starts) traces every family's models to a graph that
computes what the eager model computes: no eager-only memory layout or fast path inside."""

import pytest
import torch

import effvid
from tests.conftest import small_input


@pytest.mark.parametrize("name", ["vmf_xxs", "vmf_xs", "x3d_xs", "mobileformer_26m"])
def test_torch_export_gives_the_eager_outputs(name):
    model = effvid.create_model(name, num_classes=5).eval()
    clips = small_input(effvid.get_model_card(name), batch=1)
    exported = torch.export.export(model, (clips,))
    layouts = [
        node.name
        for node in exported.graph.nodes
        if node.kwargs.get("memory_format") not in (None, torch.contiguous_format)
    ]
    assert layouts == []  # ExecuTorch's lowering cannot give such a node a dim order
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(clips), model(clips), rtol=0, atol=1e-5)
