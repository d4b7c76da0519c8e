"""token_attention_stats.py: how a Former mixes the tokens, the measure behind the collapse
mechanism written in ABLATIONS.md."""

import pytest
import torch

import effvid
from vmf_tokens.tests import load_script

pytestmark = pytest.mark.research


@pytest.fixture(scope="module")
def stats():
    return load_script("token_attention_stats")


def test_tokens_once_equal_are_mixed_uniformly_and_stay_equal(stats):
    """Equal tokens give every Former uniform attention (weight 1/M on itself), the same
    attended vector for every token and equal tokens out. Distinct tokens at initialisation
    stay distinct although the attention is about as uniform (the attended vectors are close,
    but the update they give is small beside the residual)."""
    torch.manual_seed(0)
    model = effvid.create_model("vmf_xxs", num_classes=5).eval()
    clips = torch.randn(2, 3, 4, 64, 64)
    distinct = stats.former_mixing(model, clips)
    assert len(distinct) == 8
    assert all(values["cosine out"] < 0.1 for values in distinct.values())
    assert all(values["attended spread / token spread"] < 0.2 for values in distinct.values())
    with torch.no_grad():
        model.tokens.weight.copy_(model.tokens.weight[:1].expand_as(model.tokens.weight))
    merged = stats.former_mixing(model, clips)
    for values in merged.values():
        assert values["self weight"] == pytest.approx(1 / 3)
        assert values["attended spread / token spread"] == 0
        assert values["cosine out"] == pytest.approx(1.0, abs=1e-5)
