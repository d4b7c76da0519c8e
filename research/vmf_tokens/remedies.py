"""The three token remedies the study tried against collapsing global tokens, none adopted
(ABLATIONS.md says why), as switches of effvid's (Video) Mobile-Former:

- `token_identity=True`: the learned token table, the tokens' starting values, is added to the
  tokens wherever they are projected into queries or keys (Mobile->Former queries, the Former's
  queries and keys, Former->Mobile keys), as DETR re-injects its query embeddings at every
  decoder layer; the values are the tokens alone. Each token keeps an identity of its own
  whatever its content becomes.
- `token_diversity=w > 0`: in training mode the model keeps w times the mean pairwise cosine
  similarity of its tokens after each block, averaged over the blocks, for `StudyTrainer` to
  add to the loss (`take_penalty`): a diversity term against the tokens merging into one. It
  changes nothing at inference and in the weights.
- `token_pre_norm=True`: the token updates (every Mobile->Former bridge and Former sub-layer)
  read the tokens through their LayerNorm and add to them unnormalised, as pre-norm
  Transformers do; the authors' are post-norm. An update the same for every token (a Former
  attending uniformly) then leaves the tokens' differences as they were instead of shrinking
  them. The Mobile part, Former->Mobile and the head read the token stream normalised (no
  affine).

None adds a parameter: the network is effvid's, built by its own constructor (same initial
weights for the same seed, same state-dict keys), whose token modules then take the remedy
classes below (subclasses that compute differently, with no state of their own). A checkpoint
of the study loads with the switches on or off, and with every switch off a model computes
exactly as effvid's.

`register()` (called by `register.py`) makes every `mobileformer_*` and `vmf_*` model accept
the three switches as constructor arguments, as the study's recipes give them
(`model.args.token_identity=true`); without them the builder is effvid's own.
"""

from collections.abc import Callable

import torch
from torch import nn

from effvid.models import registry
from effvid.models.base import Features
from effvid.models.layers.attention import channel_split_attention, channel_split_attention_weights
from effvid.models.layers.tokens import is_per_frame, mean_pairwise_cosine
from effvid.models.mobile_former import (
    MOBILE_FORMER_CONFIGS,
    Former,
    FormerToMobile,
    MobileFormer,
    MobileFormerBlock,
    MobileFormerDownBlock,
    MobileToFormer,
    _as_frames,
    _from_frames,
)
from effvid.models.video_mobile_former import VideoMobileFormer

REMEDIES = ("token_identity", "token_diversity", "token_pre_norm")


def with_identity(tokens: torch.Tensor, identity: torch.Tensor | None) -> torch.Tensor:
    """Tokens plus their identity embedding (M, D), broadcast over batch (and frames), or the
    tokens alone when there is none."""
    return tokens if identity is None else tokens + identity


def update_input(tokens: torch.Tensor, norm: nn.LayerNorm, pre_norm: bool) -> torch.Tensor:
    """What a token update reads: the tokens (the authors' post-norm), or their normalised copy
    (pre-norm)."""
    return norm(tokens) if pre_norm else tokens


def add_update(
    tokens: torch.Tensor, update: torch.Tensor, norm: nn.LayerNorm, pre_norm: bool
) -> torch.Tensor:
    """Post-norm (the authors') normalises the sum; pre-norm leaves it, so an update added
    alike to every token leaves their differences as they were."""
    return tokens + update if pre_norm else norm(tokens + update)


def for_readers(tokens: torch.Tensor | None, pre_norm: bool) -> torch.Tensor | None:
    """The tokens as the Mobile part, Former->Mobile and the head read them. Post-norm tokens
    are normalised already; a pre-norm stream is normalised here, without an affine of its own
    (the readers' linear layers absorb one), else its growth feeds back through the convs."""
    if tokens is None or not pre_norm:
        return tokens
    return nn.functional.layer_norm(tokens, tokens.shape[-1:])


class _TokenRemedy:
    """What a remedy module knows besides its weights: the model's token table (for
    `token_identity`, held outside the module tree: it adds no state-dict key) and whether its
    updates are pre-norm."""

    pre_norm: bool = False
    _identity_table: nn.Embedding | None = None

    def adopt(self, table: nn.Embedding | None, pre_norm: bool) -> None:
        self.__dict__["_identity_table"] = table  # a reference, not a submodule
        self.pre_norm = pre_norm

    @property
    def identity(self) -> torch.Tensor | None:
        """The token table (M, D) when `token_identity` is on, else None."""
        table = self._identity_table
        return None if table is None else table.weight


class RemedyMobileToFormer(_TokenRemedy, MobileToFormer):
    """Mobile->Former with the remedies: queries from the tokens (pre-norm: their normalised
    copy) plus their identity; the update added unnormalised with pre-norm."""

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        if is_per_frame(tokens):
            updated = self._update(_as_frames(x), tokens.flatten(0, 1))
            return updated.unflatten(0, tokens.shape[:2])
        return self._update(x, tokens)

    def _update(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        features = x.flatten(2).transpose(1, 2).contiguous()
        read = update_input(tokens, self.layer_norm, self.pre_norm)
        queries = self.q(with_identity(read, self.identity))
        attended = channel_split_attention(queries, features, features, self.num_heads)
        attended = attended * (2.0 * self.alpha(read))
        update = self.drop_path(self.proj(attended))
        return add_update(tokens, update, self.layer_norm, self.pre_norm)

    def attention_weights(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        if is_per_frame(tokens):
            weights = self.attention_weights(_as_frames(x), tokens.flatten(0, 1))
            return weights.unflatten(0, tokens.shape[:2])
        features = x.flatten(2).transpose(1, 2)
        read = update_input(tokens, self.layer_norm, self.pre_norm)
        queries = self.q(with_identity(read, self.identity))
        return channel_split_attention_weights(queries, features, self.num_heads)


class RemedyFormer(_TokenRemedy, Former):
    """The Former with the remedies: queries and keys are the tokens as read (pre-norm: through
    the LayerNorm) plus their identity, the values the tokens as read; with pre-norm both
    sub-layers add their outputs unnormalised."""

    def read(self, tokens: torch.Tensor) -> torch.Tensor:
        """What the attention reads of the tokens: themselves, or with pre-norm their
        normalised copy."""
        return update_input(tokens, self.layer_norm, self.pre_norm)

    def keys(self, read: torch.Tensor) -> torch.Tensor:
        """The keys (and the queries' input) of the tokens as read: with their identity."""
        return with_identity(read, self.identity)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.causal:
            return self._causal(tokens)
        layout = tokens.shape
        read = self.read(tokens)
        keys = self.keys(read).flatten(1, -2)
        return self._update(tokens.flatten(1, -2), keys, read.flatten(1, -2)).view(layout)

    def _update(self, tokens: torch.Tensor, keys: torch.Tensor, values: torch.Tensor):
        queries = self.q(keys[:, : tokens.shape[1]])
        attended = channel_split_attention(queries, keys, values, self.num_heads)
        update = self.drop_path(self.channel_mlp(attended))
        tokens = add_update(tokens, update, self.layer_norm, self.pre_norm)
        update = self.ffn(update_input(tokens, self.ffn_norm, self.pre_norm))
        return add_update(tokens, update, self.ffn_norm, self.pre_norm)

    def _causal(self, tokens: torch.Tensor) -> torch.Tensor:
        memory = self.past()
        if memory is None:  # the start of a stream
            memory = tokens.new_zeros(tokens[:, 0].shape)
        outputs = []
        for frame in tokens.unbind(dim=1):
            read = self.read(frame), self.read(memory)
            keys = torch.cat([self.keys(part) for part in read], 1)
            memory = self._update(frame, keys, torch.cat(read, 1))
            outputs.append(memory)
        self.keep(memory)
        return torch.stack(outputs, dim=1)


def former_reading(former: Former, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What a Former's attention reads of `tokens` (its values) and its keys (the queries'
    input): the tokens themselves for effvid's Former, as the remedies have it for theirs."""
    if isinstance(former, RemedyFormer):
        read = former.read(tokens)
        return read, former.keys(read)
    return tokens, tokens


class RemedyFormerToMobile(_TokenRemedy, FormerToMobile):
    """Former->Mobile with `token_identity`: the keys are projected from the tokens plus their
    identity (the values from the tokens alone)."""

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        keys = self.k(with_identity(tokens, self.identity))
        values = self.proj(tokens)
        if is_per_frame(tokens):
            read = self._read(_as_frames(x), keys.flatten(0, 1), values.flatten(0, 1))
            return _from_frames(read, x.shape[0])
        return self._read(x, keys, values)


class _RemedyBlockForward(_TokenRemedy):
    """A block whose Mobile part and Former->Mobile read the token stream as `for_readers`
    gives it (normalised with pre-norm)."""

    def forward(
        self, x: torch.Tensor, tokens: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.local_global is not None:
            tokens = self.local_global(x, tokens)
        if self.global_block is not None:
            tokens = self.global_block(tokens)
        read = for_readers(tokens, self.pre_norm)
        x = self.mobile(x, read)
        if self.global_local is not None:
            x = self.global_local(x, read)
        return x, tokens


class RemedyBlock(_RemedyBlockForward, MobileFormerBlock):
    pass


class RemedyDownBlock(_RemedyBlockForward, MobileFormerDownBlock):
    pass


# effvid's module -> the remedy class that takes its place (most derived first).
REPLACEMENTS: dict[type[nn.Module], type[nn.Module]] = {
    MobileFormerDownBlock: RemedyDownBlock,
    MobileFormerBlock: RemedyBlock,
    MobileToFormer: RemedyMobileToFormer,
    Former: RemedyFormer,
    FormerToMobile: RemedyFormerToMobile,
}


class _Remedies:
    """The remedy switches of a (Video) Mobile-Former, mixed in before effvid's class."""

    token_identity: bool
    token_diversity: float
    token_pre_norm: bool

    def __init__(
        self,
        *,
        token_identity: bool = False,
        token_diversity: float = 0.0,
        token_pre_norm: bool = False,
        **model_args,
    ) -> None:
        super().__init__(**model_args)  # effvid's (Video)MobileFormer, next in the MRO
        self._adopt_remedies(token_identity, token_diversity, token_pre_norm)

    def _adopt_remedies(self, token_identity: bool, token_diversity: float, pre_norm: bool):
        global_branch = self.tokens is not None
        self.token_identity = token_identity and global_branch
        self.token_diversity = token_diversity if global_branch else 0.0
        self.token_pre_norm = pre_norm and global_branch
        self._token_penalty: torch.Tensor | None = None
        table = self.tokens if self.token_identity else None
        for module in self.modules():
            remedy = REPLACEMENTS.get(type(module))
            if remedy is not None:
                module.__class__ = remedy  # same attributes and weights, the remedy's forward
                module.adopt(table, self.token_pre_norm)

    def forward_features(self, x: torch.Tensor) -> Features:
        x, tokens = self.stem_and_tokens(x)
        penalise = self.training and self.token_diversity > 0
        cosines = []
        for block in self.features:
            x, tokens = block(x, tokens)
            if penalise:
                cosines.append(mean_pairwise_cosine(tokens))
        if penalise:
            self._token_penalty = self.token_diversity * torch.stack(cosines).mean()
        if self.local_global is not None:
            tokens = self.local_global(x, tokens)
        return Features(x, for_readers(tokens, self.token_pre_norm))

    def take_penalty(self) -> torch.Tensor | None:
        """The diversity term of the last training forward, handed over once (None until the
        next one; always None without `token_diversity`)."""
        penalty, self._token_penalty = self._token_penalty, None
        return penalty


class RemedyMobileFormer(_Remedies, MobileFormer):
    """The image Mobile-Former with the remedy switches (see the module docstring)."""


class RemedyVideoMobileFormer(_Remedies, VideoMobileFormer):
    """Video Mobile-Former with the remedy switches (see the module docstring)."""


def take_penalties(model: nn.Module) -> torch.Tensor | None:
    """The sum of the diversity terms of every remedy model within `model` (a wrapper such as
    the per-frame arm included) from its last training forward, or None."""
    penalties = [m.take_penalty() for m in model.modules() if isinstance(m, _Remedies)]
    penalties = [p for p in penalties if p is not None]
    return None if not penalties else sum(penalties[1:], penalties[0])


def _with_remedies(
    product: Callable[..., nn.Module], remedy_cls: type[nn.Module], table: dict
) -> Callable[..., nn.Module]:
    """A builder that is effvid's `product` unless a remedy switch is given, then builds
    `remedy_cls` from the same table."""

    def build(**overrides) -> nn.Module:
        if not any(name in overrides for name in REMEDIES):
            return product(**overrides)
        return registry.build_model(remedy_cls, table, overrides)

    build.__name__ = getattr(product, "__name__", "build")
    build.__doc__ = f"{product.__doc__ or ''} With the study's token remedies (remedies.py)."
    return build


def register() -> None:
    """Let every `mobileformer_*` and `vmf_*` model take the remedy switches (once)."""
    for name in registry.list_models("mobileformer_*") + registry.list_models("vmf_*"):
        product, card = registry.model_builder(name), registry.get_model_card(name)
        if getattr(product, "takes_remedies", False):
            continue
        base = name.removeprefix("mobileformer_")
        if name.startswith("vmf_"):
            base = card.extras["image_base"].removeprefix("mobileformer_")
            remedy_cls = RemedyVideoMobileFormer
        else:
            remedy_cls = RemedyMobileFormer
        builder = _with_remedies(product, remedy_cls, MOBILE_FORMER_CONFIGS[base])
        builder.takes_remedies = True
        registry.register_model(card, replace=True)(builder)
