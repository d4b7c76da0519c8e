"""Mobile-Former: Bridging MobileNet and Transformer (Chen et al., CVPR 2022, arXiv 2108.05895).

A MobileNet-like CNN ("Mobile") and a tiny Transformer over a few learnable global tokens
("Former") run in parallel and talk through two light cross-attention bridges in every block:

    Mobile->Former: the tokens query the feature map (keys = values = raw features).
    Former:         token self-attention (query projection only) + FFN, post-norm.
    Mobile:         a depthwise-separable block whose dynamic ReLUs are driven by the first token.
    Former->Mobile: every position queries the tokens (keys/values projected from the tokens).

This file follows the first author's released code (github.com/AAboys/MobileFormer, commit
b19a2a7) exactly (docs/models.md, "Where each model comes from"): the dynamic channel gate in
Mobile->Former, the inner residual of the stride-2 block, the lite bottleneck, the per-site
channel shuffles of the 26M variant, the extra bridge after the last block and the
head that concatenates the pooled features with token 0. Parameter and buffer names equal the
authors' checkpoints, so their state dicts load strictly.

Differences from that code, none of which changes a released model's output:
- tokens are laid out batch-first (B, M, D) instead of sequence-first (M, B, D);
- attention runs through `scaled_dot_product_attention`;
- drop-path on tokens drops whole samples (the authors' dropped single tokens; every released
  recipe trains with drop-path 0).

The blocks are written once for any dimensionality: a `ConvLayers` object builds the convs and
norms, so `video_mobile_former.py` reuses every block with 3-D convolutions.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from effvid.models.base import ClassifierModel, Features, linear_classifier
from effvid.models.constants import IMAGENET_MEAN, IMAGENET_STD
from effvid.models.layers import (
    ChannelShuffle,
    DropPath,
    DynamicReLU,
    GlobalAvgPool,
    StaticReLU,
    channel_split_attention,
    channel_split_attention_weights,
    is_exporting,
    use_channels_last,
)
from effvid.models.layers.streaming import StreamingLayer
from effvid.models.layers.tokens import first_token, is_per_frame
from effvid.models.registry import ModelCard, build_model, register_model


class BlockSpec(NamedTuple):
    """One Mobile-Former block: expansion of its first conv, output channels, spatial stride."""

    expansion: int
    out_channels: int
    stride: int


class ConvLayers:
    """Builds the convolutions and norms of a Mobile-Former for 2-D images.

    Subclasses change the dimensionality (see `VideoConvLayers`); the blocks only call these
    methods. No conv has a bias; every 3x3 conv has padding 1.
    """

    input_ndim = 4
    input_layout = "(B, C, H, W)"
    causal = False  # whether no conv sees a future frame (images have no time)
    # Channels-last runs the convs through oneDNN on CPU (1.07x for images, up to 2x for clips)
    # and makes the bridges' (B, N, C) views of the feature map contiguous for free.
    memory_format = torch.channels_last

    def stem(self, in_channels: int, out_channels: int) -> nn.Module:
        """3x3 conv, spatial stride 2."""
        return nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False)

    def depthwise(self, in_channels: int, out_channels: int, stride: int) -> nn.Module:
        """3x3 depthwise conv with channel multiplier out/in (output c*e+m copies input c)."""
        return nn.Conv2d(
            in_channels, out_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False
        )

    def pointwise(self, in_channels: int, out_channels: int, groups: int = 1) -> nn.Module:
        """1x1 conv, optionally grouped."""
        return nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)

    def norm(self, channels: int) -> nn.Module:
        return nn.BatchNorm2d(channels)


def _shuffle(groups: int) -> nn.Module:
    """A channel shuffle, or an empty slot that keeps the authors' Sequential indices."""
    return ChannelShuffle(groups) if groups > 1 else nn.Identity()


def _as_frames(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, *spatial) -> (B * T, C, *spatial): each frame as its own sample."""
    return x.transpose(1, 2).flatten(0, 1)


def _from_frames(x: torch.Tensor, batch: int) -> torch.Tensor:
    """The inverse of `_as_frames`: (B * T, C, *spatial) -> (B, C, T, *spatial)."""
    # reshape, not unflatten: ONNX export records unflatten's sizes as constants, which would
    # fix the batch of the exported graph (`MobileToFormer.forward` likewise).
    return x.reshape(batch, -1, *x.shape[1:]).transpose(1, 2)


class MobileToFormer(nn.Module):
    """Mobile->Former bridge: the tokens gather information from the feature map.

    Only the tokens are projected (query); keys and values are the raw features, split into
    `num_heads` channel slices. The attended features are gated per token and channel by
    2*hsigmoid(Linear(tokens)), projected to the token width and added with a post-norm.

    x: (B, C, *spatial), tokens: (B, M, D) -> tokens (B, M, D). Attention runs over every
    position of x, i.e. over H*W for images and T*H*W for clips. Tokens per frame, (B, T, M, D),
    read only their own frame of x (B, C, T, H, W).
    """

    def __init__(
        self, channels: int, token_dim: int, num_heads: int = 2, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.alpha = nn.Sequential(nn.Linear(token_dim, channels), nn.Hardsigmoid())
        self.q = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        if is_per_frame(tokens):
            updated = self._update(_as_frames(x), tokens.flatten(0, 1))
            return updated.reshape(tokens.shape)  # not unflatten: see _from_frames
        return self._update(x, tokens)

    def _update(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        # Channels-contiguous (B, N, C): the fused attention kernel needs a unit last stride.
        features = x.flatten(2).transpose(1, 2).contiguous()
        attended = channel_split_attention(self.q(tokens), features, features, self.num_heads)
        attended = attended * (2.0 * self.alpha(tokens))
        return self.layer_norm(tokens + self.drop_path(self.proj(attended)))

    def attention_weights(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Where each token looks: x (B, C, *spatial), tokens (B, M, D) -> (B, heads, M, N),
        a distribution over the N = prod(spatial) positions per head and token. Tokens per
        frame (B, T, M, D) -> (B, T, heads, M, H*W), over the positions of their frame."""
        if is_per_frame(tokens):
            weights = self.attention_weights(_as_frames(x), tokens.flatten(0, 1))
            return weights.unflatten(0, tokens.shape[:2])
        features = x.flatten(2).transpose(1, 2)
        return channel_split_attention_weights(self.q(tokens), features, self.num_heads)


class Former(StreamingLayer, nn.Module):
    """The token Transformer layer: query-only self-attention and a 2x FFN, both post-norm.

    Keys and values are the tokens themselves (no projection), as in the authors' code.
    tokens: (B, M, D) -> (B, M, D); tokens per frame (B, T, M, D) all attend to each other.

    `causal` (tokens per frame, the streaming VMF): frame t's tokens attend to themselves and to
    the tokens this layer gave frame t - 1 (zeros before the first frame), never to a later
    frame: one frame of token memory per layer, carried along the stream.
    """

    def __init__(
        self,
        token_dim: int,
        num_heads: int = 4,
        ffn_ratio: int = 2,
        drop_path: float = 0.0,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.causal = causal
        self.num_heads = num_heads
        self.ffn = nn.Sequential(
            nn.Linear(token_dim, token_dim * ffn_ratio),
            nn.GELU(),
            nn.Linear(token_dim * ffn_ratio, token_dim),
        )
        self.ffn_norm = nn.LayerNorm(token_dim)
        self.q = nn.Linear(token_dim, token_dim)
        self.channel_mlp = nn.Linear(token_dim, token_dim)
        self.layer_norm = nn.LayerNorm(token_dim)
        self.drop_path = DropPath(drop_path)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.causal:
            return self._causal(tokens)
        flat = tokens.flatten(1, -2)
        return self._update(flat, flat, flat).view(tokens.shape)

    def _update(self, tokens: torch.Tensor, keys: torch.Tensor, values: torch.Tensor):
        """tokens (B, M, D) attend to keys/values (B, N, D) -> (B, M, D); queries from the keys'
        first M rows, which are the tokens."""
        queries = self.q(keys[:, : tokens.shape[1]])
        attended = channel_split_attention(queries, keys, values, self.num_heads)
        tokens = self.layer_norm(tokens + self.drop_path(self.channel_mlp(attended)))
        return self.ffn_norm(tokens + self.ffn(tokens))

    def _causal(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens per frame (B, T, M, D) -> (B, T, M, D), frame by frame with the memory."""
        memory = self.past()
        if memory is None:  # the start of a stream
            memory = tokens.new_zeros(tokens[:, 0].shape)
        outputs = []
        for frame in tokens.unbind(dim=1):
            keys = torch.cat([frame, memory], 1)
            memory = self._update(frame, keys, keys)
            outputs.append(memory)
        self.keep(memory)
        return torch.stack(outputs, dim=1)


class FormerToMobile(nn.Module):
    """Former->Mobile bridge: every position of the feature map reads from the tokens.

    The raw features are the queries (no projection); keys and values are projected from the
    tokens (`k` and `proj`); softmax over the M tokens; no output projection, no norm.
    x: (B, C, *spatial), tokens: (B, M, D) -> (B, C, *spatial). Tokens per frame (B, T, M, D)
    are read only by the positions of their frame.
    """

    def __init__(
        self, channels: int, token_dim: int, num_heads: int = 2, drop_path: float = 0.0
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.k = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(token_dim, channels)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        keys = self.k(tokens)
        values = self.proj(tokens)
        if is_per_frame(tokens):
            read = self._read(_as_frames(x), keys.flatten(0, 1), values.flatten(0, 1))
            return _from_frames(read, x.shape[0])
        return self._read(x, keys, values)

    def _read(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        queries = x.flatten(2).transpose(1, 2).contiguous()  # (B, N, C), see MobileToFormer
        read = channel_split_attention(queries, keys, values, self.num_heads)  # (B, N, C)
        # (B, N, C) is the channels-last layout of x: a view back to (B, C, *spatial), no copy
        read = read.unflatten(1, x.shape[2:])
        read = read.permute(0, read.ndim - 1, *range(1, read.ndim - 1))
        return x + self.drop_path(read)


class GlobalBranchSpec(NamedTuple):
    """Widths and switches of the token branch shared by every block."""

    token_dim: int
    bridge_heads: int
    former_heads: int
    ffn_ratio: int
    mobile_to_former: bool
    former_to_mobile: bool
    dynamic_relu: bool
    hyper_reduction: int
    causal: bool = False  # the Formers keep one frame of token memory (streaming VMF)


class LiteBottleneck(nn.Module):
    """The first block after the stem: depthwise (x expansion) + ReLU6, then pointwise; no tokens.

    x: (B, Cin, *spatial) -> (B, Cout, *spatial / stride); tokens pass through unchanged. The
    identity skip is a plain add when the stride is 1 and the widths match.
    """

    def __init__(
        self,
        layers: ConvLayers,
        in_channels: int,
        spec: BlockSpec,
        pointwise_groups: int = 1,
    ) -> None:
        super().__init__()
        hidden = in_channels * spec.expansion
        self.conv = nn.Sequential(
            layers.depthwise(in_channels, hidden, spec.stride),
            layers.norm(hidden),
            nn.ReLU6(inplace=True),
            _shuffle(in_channels if pointwise_groups > 1 else 1),
            layers.pointwise(hidden, spec.out_channels, pointwise_groups),
            layers.norm(spec.out_channels),
        )
        self.use_skip = spec.stride == 1 and in_channels == spec.out_channels

    def forward(
        self, x: torch.Tensor, tokens: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.conv(x)
        return (x + out if self.use_skip else out), tokens


class _BridgedBlock(nn.Module):
    """What every Mobile-Former block shares: the bridges and the Former around a Mobile part.

    Order of one block: Mobile->Former on the block input, the Former, the Mobile part (its
    dynamic ReLUs read token 0 of the updated tokens, of each frame with tokens per frame), its
    skip, then Former->Mobile.
    Subclasses register their convs first (the authors' state-dict order), then call
    `_add_global_branch`, and implement `mobile(x, tokens)`.

    Attribute names are the authors' (so that their checkpoints load): `local_global` is the
    Mobile->Former bridge, `global_block` the Former, `global_local` the Former->Mobile bridge,
    `hyperN` the dynamic ReLU after `convN`. A switched-off part is None.
    """

    def _add_global_branch(
        self, in_channels: int, out_channels: int, spec: GlobalBranchSpec | None, drop_path: float
    ) -> None:
        self.local_global = self.global_block = self.global_local = None
        if spec is None:
            return
        if spec.mobile_to_former:
            self.local_global = MobileToFormer(
                in_channels, spec.token_dim, spec.bridge_heads, drop_path
            )
        self.global_block = Former(
            spec.token_dim, spec.former_heads, spec.ffn_ratio, drop_path, spec.causal
        )
        if spec.former_to_mobile:
            self.global_local = FormerToMobile(
                out_channels, spec.token_dim, spec.bridge_heads, drop_path
            )

    def mobile(self, x: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        """The convolutions; their dynamic ReLUs read token 0 of `tokens`."""
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, tokens: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.local_global is not None:
            tokens = self.local_global(x, tokens)
        if self.global_block is not None:
            tokens = self.global_block(tokens)
        x = self.mobile(x, tokens)
        if self.global_local is not None:
            x = self.global_local(x, tokens)
        return x, tokens


def _activation(spec: GlobalBranchSpec | None, channels: int) -> nn.Module:
    if spec is None or not spec.dynamic_relu:
        return StaticReLU()
    return DynamicReLU(spec.token_dim, channels, spec.hyper_reduction)


class MobileFormerBlock(_BridgedBlock):
    """Stride-1 block (authors' `DnaBlock`): pw expand, dw, pw project, skip if widths match.

    x: (B, Cin, *spatial), tokens: (B, M, D) -> (B, Cout, *spatial), tokens.
    With grouped pointwise convs (26M) a shuffle follows each pointwise BN.
    """

    def __init__(
        self,
        layers: ConvLayers,
        in_channels: int,
        spec: BlockSpec,
        global_spec: GlobalBranchSpec | None,
        pointwise_groups: int = 1,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = in_channels * spec.expansion
        out_channels = spec.out_channels
        self.conv1 = nn.Sequential(
            layers.pointwise(in_channels, hidden, pointwise_groups),
            layers.norm(hidden),
            _shuffle(pointwise_groups),
        )
        self.hyper1 = _activation(global_spec, hidden)
        self.conv2 = nn.Sequential(layers.depthwise(hidden, hidden, 1), layers.norm(hidden))
        self.hyper2 = _activation(global_spec, hidden)
        self.conv3 = nn.Sequential(
            layers.pointwise(hidden, out_channels, pointwise_groups),
            layers.norm(out_channels),
            _shuffle(pointwise_groups),
        )
        self.use_skip = in_channels == out_channels
        self.drop_path = DropPath(drop_path)
        self._add_global_branch(in_channels, out_channels, global_spec, drop_path)

    def mobile(self, x: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        out = self.hyper1(self.conv1(x), tokens)
        out = self.hyper2(self.conv2(out), tokens)
        out = self.conv3(out)
        return x + self.drop_path(out) if self.use_skip else out


class MobileFormerDownBlock(_BridgedBlock):
    """Stride-2 block (authors' `DnaBlock3`): dw (s2, x e) -> pw = r -> dw (x4) -> pw, + r.

    x: (B, Cin, *spatial), tokens -> (B, Cout, *spatial / 2), tokens. The inner residual adds
    the first pointwise output r to the block output; there is no outer skip.
    """

    second_expansion = 4

    def __init__(
        self,
        layers: ConvLayers,
        in_channels: int,
        spec: BlockSpec,
        global_spec: GlobalBranchSpec | None,
        pointwise_groups: int = 1,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = in_channels * spec.expansion
        out_channels = spec.out_channels
        hidden2 = out_channels * self.second_expansion
        shuffle_groups = (in_channels, out_channels) if pointwise_groups > 1 else (1, 1)
        self.conv1 = nn.Sequential(
            layers.depthwise(in_channels, hidden, spec.stride),
            layers.norm(hidden),
            _shuffle(shuffle_groups[0]),
        )
        self.hyper1 = _activation(global_spec, hidden)
        self.conv2 = nn.Sequential(
            layers.pointwise(hidden, out_channels, pointwise_groups), layers.norm(out_channels)
        )
        self.conv3 = nn.Sequential(
            layers.depthwise(out_channels, hidden2, 1),
            layers.norm(hidden2),
            _shuffle(shuffle_groups[1]),
        )
        self.hyper3 = _activation(global_spec, hidden2)
        self.conv4 = nn.Sequential(
            layers.pointwise(hidden2, out_channels, pointwise_groups), layers.norm(out_channels)
        )
        self.drop_path = DropPath(drop_path)
        self._add_global_branch(in_channels, out_channels, global_spec, drop_path)

    def mobile(self, x: torch.Tensor, tokens: torch.Tensor | None) -> torch.Tensor:
        residual = self.conv2(self.hyper1(self.conv1(x), tokens))
        out = self.conv4(self.hyper3(self.conv3(residual), tokens))
        return residual + self.drop_path(out)


class MergeClassifier(nn.Module):
    """Head: 1x1 conv to 6C, global pool + h-swish, concat token 0, FC + BN + h-swish, classifier.

    x: (B, C, *spatial), tokens: (B, M, D), (B, T, M, D) (token 0 averaged over frames) or
    None -> logits (B, num_classes), or the (B, hidden) pre-logits.

    `per_frame` (the streaming VMF): the head runs on every frame (its features pooled over H x W,
    its token 0) and the clip's output is the mean over frames; `per_step=True` returns the
    frames' outputs, (B, T, num_classes).
    """

    expansion = 6

    def __init__(
        self,
        layers: ConvLayers,
        in_channels: int,
        token_dim: int,
        hidden: int,
        num_classes: int,
        pointwise_groups: int = 1,
        drop_rate: float = 0.0,
        per_frame: bool = False,
    ) -> None:
        super().__init__()
        self.per_frame = per_frame
        channels = in_channels * self.expansion
        self.conv = nn.Sequential(
            _shuffle(pointwise_groups),
            layers.pointwise(in_channels, channels, pointwise_groups),
            layers.norm(channels),
            nn.ReLU6(inplace=True),
        )
        self.avgpool = nn.Sequential(GlobalAvgPool(), nn.Hardswish())
        self.fc = nn.Sequential(
            nn.Linear(channels + token_dim, hidden), nn.BatchNorm1d(hidden), nn.Hardswish()
        )
        # Initialised with the whole model (MobileFormer), as the authors do.
        classifier = linear_classifier(hidden, num_classes, init=False)
        self.classifier = nn.Sequential(nn.Dropout(drop_rate), classifier)

    def forward(
        self,
        x: torch.Tensor,
        tokens: torch.Tensor | None,
        pre_logits: bool = False,
        per_step: bool = False,
    ) -> torch.Tensor:
        if self.per_frame:
            return self._per_frame(x, tokens, pre_logits, per_step)
        pooled = self.avgpool(self.conv(x))
        if tokens is not None:
            first = first_token(tokens)
            pooled = torch.cat([pooled, first.mean(dim=1) if is_per_frame(tokens) else first], 1)
        hidden = self.fc(pooled)
        return hidden if pre_logits else self.classifier(hidden)

    def _per_frame(
        self, x: torch.Tensor, tokens: torch.Tensor, pre_logits: bool, per_step: bool
    ) -> torch.Tensor:
        pooled = self.avgpool[1](self.conv(x).mean(dim=(-2, -1))).transpose(1, 2)  # (B, T, C)
        merged = torch.cat([pooled, first_token(tokens)], dim=-1)
        hidden = self.fc(merged.flatten(0, 1)).unflatten(0, merged.shape[:2])  # (B, T, hidden)
        out = hidden if pre_logits else self.classifier(hidden)
        return out if per_step else out.mean(dim=1)


@torch.no_grad()
def _init_weights(module: nn.Module) -> None:
    """The authors' init of one module: conv N(0, sqrt(2 / (kernel volume * C_out))), Linear
    N(0, 0.01) with zero bias, norms weight 1 and bias 0; anything else keeps its default."""
    if isinstance(module, nn.Conv2d | nn.Conv3d):
        fan_out = math.prod(module.kernel_size) * module.out_channels
        module.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
    elif isinstance(module, nn.Linear):
        module.weight.normal_(0.0, 0.01)
        module.bias.zero_()
    elif isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
        module.weight.fill_(1.0)
        module.bias.zero_()


class MobileFormer(ClassifierModel):
    """Mobile-Former for images; with `VideoConvLayers`, the backbone of Video Mobile-Former.

    Input (B, 3, H, W) -> logits (B, num_classes). The stem halves the resolution, then the lite
    bottleneck and the Mobile-Former blocks (each stride-2 block halves it again), a final
    Mobile->Former bridge, and the merge head.

    Ablation switches: `global_branch=False` removes the tokens, the Former, every bridge and the
    dynamic ReLUs (the CNN alone); `mobile_to_former` / `former_to_mobile` remove one bridge
    direction; `dynamic_relu=False` uses static ReLUs.
    """

    tokens_per_frame = False  # one token set per sample; see VideoMobileFormer
    classifier_path = "classifier.classifier.1"

    def __init__(
        self,
        *,
        stem_channels: int,
        lite_block: Sequence[int],
        blocks: Sequence[Sequence[int]],
        num_tokens: int,
        token_dim: int,
        head_hidden: int,
        num_classes: int = 1000,
        in_chans: int = 3,
        pointwise_groups: int = 1,
        bridge_heads: int = 2,
        former_heads: int = 4,
        ffn_ratio: int = 2,
        hyper_reduction: int = 4,
        global_branch: bool = True,
        mobile_to_former: bool = True,
        former_to_mobile: bool = True,
        dynamic_relu: bool = True,
        causal: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        conv_layers: ConvLayers | None = None,
    ) -> None:
        super().__init__()
        layers = conv_layers or ConvLayers()
        if causal and not (global_branch and layers.causal):
            raise ValueError("causal=True is for Video Mobile-Former with its global branch")
        lite_block = BlockSpec(*lite_block)
        blocks = [BlockSpec(*block) for block in blocks]
        self.input_ndim = layers.input_ndim
        self.input_layout = layers.input_layout
        self.num_classes = num_classes
        self.tokens = nn.Embedding(num_tokens, token_dim) if global_branch else None
        global_spec = None
        if global_branch:
            global_spec = GlobalBranchSpec(
                token_dim=token_dim,
                bridge_heads=bridge_heads,
                former_heads=former_heads,
                ffn_ratio=ffn_ratio,
                mobile_to_former=mobile_to_former,
                former_to_mobile=former_to_mobile,
                dynamic_relu=dynamic_relu,
                hyper_reduction=hyper_reduction,
                causal=causal,
            )
        self.stem = nn.Sequential(
            layers.stem(in_chans, stem_channels), layers.norm(stem_channels), nn.ReLU6(inplace=True)
        )
        features: list[nn.Module] = [
            LiteBottleneck(layers, stem_channels, lite_block, pointwise_groups)
        ]
        channels = lite_block.out_channels
        for index, spec in enumerate(blocks):
            block_cls = MobileFormerDownBlock if spec.stride > 1 else MobileFormerBlock
            drop_path = drop_path_rate * (index + 1) / len(blocks)
            features.append(
                block_cls(layers, channels, spec, global_spec, pointwise_groups, drop_path)
            )
            channels = spec.out_channels
        self.features = nn.Sequential(*features)
        self.local_global = (
            MobileToFormer(channels, token_dim, bridge_heads) if global_spec else None
        )
        self.classifier = MergeClassifier(
            layers,
            channels,
            token_dim if global_branch else 0,
            head_hidden,
            num_classes,
            pointwise_groups,
            drop_rate,
            per_frame=causal,
        )
        self.num_features = channels
        self.head_hidden_size = head_hidden
        # One pass in registration order after construction, as the authors do: with the same
        # seed this reproduces their initial weights bit for bit. The token table keeps N(0, 1).
        self.apply(_init_weights)
        self.memory_format = layers.memory_format
        use_channels_last(self, self.memory_format)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != self.input_ndim:
            raise ValueError(
                f"{type(self).__name__} expects input of shape {self.input_layout}, "
                f"got a tensor of shape {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> Features:
        """x: (B, 3, H, W) (or (B, 3, T, H, W) for video) -> Features: the last feature map
        (B, num_features, H/32, W/32) (with T for video) and the tokens (B, M, D), or
        (B, T, M, D) per frame, after the final Mobile->Former bridge (None without the global
        branch)."""
        x, tokens = self.stem_and_tokens(x)
        for block in self.features:
            x, tokens = block(x, tokens)
        if self.local_global is not None:
            tokens = self.local_global(x, tokens)
        return Features(x, tokens)

    def stem_and_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the blocks start from: the stem's feature map of the (checked) input and the
        learned tokens, one set per sample (B, M, D) or per frame (B, T, M, D), or None without
        the global branch."""
        self._check_input(x)
        if not is_exporting():  # export formats have no memory layouts
            x = x.contiguous(memory_format=self.memory_format)
        x = self.stem(x)
        if self.tokens is None:
            return x, None
        table = self.tokens.weight
        if self.tokens_per_frame:  # the same table for every frame after the stem
            return x, table.expand(x.shape[0], x.shape[2], *table.shape)
        return x, table.unsqueeze(0).expand(x.shape[0], -1, -1)

    def forward_head(self, features: Features, pre_logits: bool = False) -> torch.Tensor:
        """Features -> logits (B, num_classes), or (B, head_hidden_size) pre-logits."""
        return self.classifier(features.feature_map, features.tokens, pre_logits=pre_logits)

    def no_weight_decay(self) -> set[str]:
        """Parameters a recipe may exclude from weight decay besides norms and biases."""
        return {"tokens.weight"} if self.tokens is not None else set()


# Per-variant tables from the authors' code (its model factory): stem width, lite block, blocks
# (expansion, out channels, stride), tokens M x D, head FC width, dropout of their recipe.
# fmt: off
MOBILE_FORMER_CONFIGS: dict[str, dict] = {
    "26m": dict(
        stem_channels=8,
        lite_block=(3, 12, 2),
        blocks=[(3, 12, 1), (6, 24, 2), (3, 24, 1), (6, 48, 2), (4, 48, 1), (6, 64, 1),
                (6, 96, 2), (6, 96, 1)],
        num_tokens=3, token_dim=128, head_hidden=1024, pointwise_groups=4, drop_rate=0.1,
    ),
    "52m": dict(
        stem_channels=8,
        lite_block=(3, 12, 2),
        blocks=[(3, 12, 1), (6, 24, 2), (3, 24, 1), (6, 48, 2), (4, 48, 1), (6, 64, 1),
                (6, 96, 2), (6, 96, 1)],
        num_tokens=3, token_dim=128, head_hidden=1024, drop_rate=0.2,
    ),
    "96m": dict(
        stem_channels=12,
        lite_block=(2, 12, 1),
        blocks=[(6, 16, 2), (6, 32, 2), (3, 32, 1), (6, 64, 2), (4, 64, 1), (6, 88, 1),
                (6, 128, 2), (6, 128, 1)],
        num_tokens=4, token_dim=128, head_hidden=1280, drop_rate=0.2,
    ),
    "151m": dict(
        stem_channels=12,
        lite_block=(2, 12, 1),
        blocks=[(6, 16, 2), (3, 16, 1), (6, 32, 2), (3, 32, 1), (6, 64, 2), (4, 64, 1),
                (6, 88, 1), (6, 88, 1), (6, 128, 2), (6, 128, 1), (6, 128, 1)],
        num_tokens=6, token_dim=192, head_hidden=1280, drop_rate=0.2,
    ),
    "214m": dict(
        stem_channels=12,
        lite_block=(2, 12, 1),
        blocks=[(6, 20, 2), (3, 20, 1), (6, 40, 2), (4, 40, 1), (6, 80, 2), (4, 80, 1),
                (6, 112, 1), (6, 112, 1), (6, 160, 2), (6, 160, 1), (6, 160, 1)],
        num_tokens=6, token_dim=192, head_hidden=1600, drop_rate=0.2,
    ),
    "294m": dict(
        stem_channels=16,
        lite_block=(2, 16, 1),
        blocks=[(6, 24, 2), (4, 24, 1), (6, 48, 2), (4, 48, 1), (6, 96, 2), (4, 96, 1),
                (6, 128, 1), (6, 128, 1), (6, 192, 2), (6, 192, 1), (6, 192, 1)],
        num_tokens=6, token_dim=192, head_hidden=1920, drop_rate=0.3,
    ),
    "508m": dict(
        stem_channels=24,
        lite_block=(2, 24, 1),
        blocks=[(6, 40, 2), (3, 40, 1), (6, 72, 2), (3, 72, 1), (6, 128, 2), (4, 128, 1),
                (6, 176, 1), (6, 176, 1), (6, 240, 2), (6, 240, 1), (6, 240, 1)],
        num_tokens=6, token_dim=192, head_hidden=1920, drop_rate=0.3,
    ),
}
# fmt: on

MOBILE_FORMER_SOURCE = (
    "Mobile-Former (arXiv 2108.05895); authors' code github.com/AAboys/MobileFormer b19a2a7"
)


def _image_card(variant: str, params: int, flops: int) -> ModelCard:
    return ModelCard(
        name=f"mobileformer_{variant}",
        family="mobile_former",
        num_frames=1,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        num_classes=1000,
        test_clips=1,
        test_crops=1,
        params=params,
        flops_per_view=flops,
        source=MOBILE_FORMER_SOURCE,
        notes="ImageNet-1k; eval: resize 256, centre crop 224, bilinear.",
    )


def _create_mobile_former(variant: str, **overrides) -> MobileFormer:
    return build_model(MobileFormer, MOBILE_FORMER_CONFIGS[variant], overrides)


@register_model(_image_card("26m", params=3_232_788, flops=26_046_336))
def mobileformer_26m(**overrides) -> MobileFormer:
    return _create_mobile_former("26m", **overrides)


@register_model(_image_card("52m", params=3_469_092, flops=51_786_624))
def mobileformer_52m(**overrides) -> MobileFormer:
    return _create_mobile_former("52m", **overrides)


@register_model(_image_card("96m", params=4_585_252, flops=96_334_448))
def mobileformer_96m(**overrides) -> MobileFormer:
    return _create_mobile_former("96m", **overrides)


@register_model(_image_card("151m", params=7_595_828, flops=152_012_400))
def mobileformer_151m(**overrides) -> MobileFormer:
    return _create_mobile_former("151m", **overrides)


@register_model(_image_card("214m", params=9_425_920, flops=215_252_960))
def mobileformer_214m(**overrides) -> MobileFormer:
    return _create_mobile_former("214m", **overrides)


@register_model(_image_card("294m", params=11_422_648, flops=295_430_400))
def mobileformer_294m(**overrides) -> MobileFormer:
    return _create_mobile_former("294m", **overrides)


@register_model(_image_card("508m", params=13_976_976, flops=510_642_176))
def mobileformer_508m(**overrides) -> MobileFormer:
    return _create_mobile_former("508m", **overrides)
