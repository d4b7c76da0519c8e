"""Token diversity: the measures read 1 for tokens that are one token repeated, and about 0 for
independent ones; every bridge and Former is measured, in the order the tokens pass."""

import pytest
import torch

import effvid
from effvid.explain.diversity import _pairwise_mean, token_diversity


def test_pairwise_measures_on_known_vectors():
    same = torch.randn(1, 1, 64).expand(5, 3, 64)  # 5 sets of 3 identical tokens
    assert _pairwise_mean(same, "cosine") == pytest.approx(1.0)
    assert _pairwise_mean(same, "correlation") == pytest.approx(1.0)
    generator = torch.Generator().manual_seed(0)
    independent = torch.randn(200, 3, 4096, generator=generator)
    assert abs(_pairwise_mean(independent, "cosine")) < 0.01
    shifted = independent + 5.0  # correlation ignores a common offset, cosine does not
    assert abs(_pairwise_mean(shifted, "correlation")) < 0.01
    assert _pairwise_mean(shifted, "cosine") > 0.9
    opposite = torch.stack([independent[:, 0], -independent[:, 0]], dim=1)
    assert _pairwise_mean(opposite, "cosine") == pytest.approx(-1.0)


def test_collapsed_tokens_read_one_and_every_module_is_measured():
    model = effvid.create_model("vmf_xxs", num_classes=4)
    clips = torch.randn(2, 3, 4, 64, 64)
    fresh = token_diversity(model, clips)
    assert fresh.final_cosine < 0.5 and fresh.mean_attention_correlation < 0.5
    names = list(fresh.token_cosine)
    assert names[0] == "features.1.local_global" and names[1] == "features.1.global_block"
    assert names[-1] == "local_global" and len(fresh.attention_correlation) == 9
    with torch.no_grad():  # every token starts equal: nothing can tell them apart any more
        model.tokens.weight.copy_(model.tokens.weight[:1].expand_as(model.tokens.weight))
    collapsed = token_diversity(model, clips)
    assert collapsed.final_cosine == pytest.approx(1.0, abs=1e-5)
    assert collapsed.mean_attention_correlation == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="no global tokens"):
        token_diversity(effvid.create_model("x3d_xs"), clips)
