"""How distinct the global tokens of a (Video) Mobile-Former are: whether its M tokens carry M
different things, or have merged into one token repeated M times.

Two measures, on a batch of clips, for the tokens of one set (per clip, or per frame with tokens
per frame), averaged over the pairs of tokens and the clips:

- `attention_correlation`, per Mobile->Former bridge: the Pearson correlation between the
  attention maps of two tokens (over the bridge's positions, mean over heads). 1: every token
  looks at the same places; about 0: unrelated maps.
- `token_cosine`, after every module that updates the tokens (each Mobile->Former bridge and
  each Former, in the order the tokens pass through them): the cosine similarity of two token
  vectors. 1: the tokens are one token repeated.
"""

from dataclasses import dataclass

import torch
from torch import nn

from effvid.models.layers.tokens import is_per_frame, mean_pairwise_cosine
from effvid.models.mobile_former import Former, MobileToFormer


@dataclass(frozen=True)
class TokenDiversity:
    """Per bridge the mean token-pair attention correlation; per module the mean token-pair
    cosine similarity after it (module paths as in `model.named_modules()`)."""

    attention_correlation: dict[str, float]
    token_cosine: dict[str, float]

    @property
    def mean_attention_correlation(self) -> float:
        values = list(self.attention_correlation.values())
        return sum(values) / len(values)

    @property
    def final_cosine(self) -> float:
        """Of the tokens that reach the head (after the last bridge)."""
        return list(self.token_cosine.values())[-1]


def _pairwise_mean(vectors: torch.Tensor, similarity: str) -> float:
    """vectors (..., M, N): the mean over the leading dims and the M (M - 1) / 2 token pairs of
    their cosine similarity, or Pearson correlation (cosine of the centred vectors)."""
    if similarity == "correlation":
        vectors = vectors - vectors.mean(dim=-1, keepdim=True)
    return float(mean_pairwise_cosine(vectors.float()))


def _token_sets(tokens: torch.Tensor) -> torch.Tensor:
    """(B, M, D) or (B, T, M, D) -> (sets, M, D): the token sets whose members are compared."""
    return tokens.flatten(0, 1) if is_per_frame(tokens) else tokens


@torch.no_grad()
def token_diversity(model: nn.Module, clips: torch.Tensor) -> TokenDiversity:
    """Run `model` (in eval mode, restored afterwards) on `clips` and measure its tokens.

    ValueError for a model without global tokens."""
    bridges = [(n, m) for n, m in model.named_modules() if isinstance(m, MobileToFormer)]
    if not bridges:
        raise ValueError(f"{type(model).__name__} has no global tokens to measure")
    updaters = [(n, m) for n, m in model.named_modules() if isinstance(m, MobileToFormer | Former)]
    correlation: dict[str, float] = {}
    cosine: dict[str, float] = {}

    def measure(name: str):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            cosine[name] = _pairwise_mean(_token_sets(output), "cosine")
            if isinstance(module, MobileToFormer):
                x, tokens = args
                weights = module.attention_weights(x, tokens).mean(dim=-3)
                correlation[name] = _pairwise_mean(_token_sets(weights), "correlation")

        return hook

    handles = [module.register_forward_hook(measure(name)) for name, module in updaters]
    was_training = model.training
    model.eval()
    try:
        model(clips)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    order = [name for name, _ in updaters]  # the order tokens pass through them
    return TokenDiversity(
        attention_correlation={n: correlation[n] for n in order if n in correlation},
        token_cosine={n: cosine[n] for n in order},
    )
