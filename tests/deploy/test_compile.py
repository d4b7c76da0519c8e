"""Every model family traces into one torch.compile graph: no graph breaks on the fast path."""

import pytest
import torch

import effvid
from tests.conftest import small_input

ONE_PER_FAMILY = ["mobileformer_26m", "vmf_xxs", "dualformer_t", "x3d_xs"]


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_forward_compiles_without_graph_breaks(name):
    model = effvid.create_model(name).eval()
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(
            small_input(effvid.get_model_card(name), batch=1)
        )
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
