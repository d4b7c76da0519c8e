"""The deployable form of a Video Mobile-Former: the same function, from the same weights, in
operations that ExecuTorch's XNNPACK delegate takes whole, every tensor at most 4-D.

`deployable_vmf(model)` rewrites a VMF whose BatchNorms are folded (`effvid.models.fusion`) in
place of its modules, each built from the module it replaces:

- the feature map lives in the frames layout, (B * T, C, H, W) (`effvid.deploy.frame_conv`):
  every 3-D convolution is a 2-D one over frames (`ConvOnFrames`), causal ones carrying their
  past frames as a stream state;
- tokens are (N, M, D) for N token sets, each of which reads and writes F consecutive frames of
  the feature map (N * F rows): one set per clip (N = B, F = T) or per frame (N = B * T, F = 1),
  so that the bridges need no mode;
- attention is batched matrix products over (sets * heads, length, head width), heads as
  contiguous channel slices, the 1/sqrt(head width) scale folded into the projection that
  makes the queries or keys;
- LayerNorm is two global average pools of a 4-D view (XNNPACK has no layer norm);
- 2 * hardsigmoid(Linear) (the dynamic ReLU's slopes, the bridge's gate) is one Linear with
  the constants folded in and a clamp; slopes per clip reach their frames by concatenation;
- the learned tokens and the Former's zero memory are repeated over the batch by concatenating
  views (XNNPACK has no broadcast copy, `expand`, and its concatenation wants distinct inputs);
- pooling is a global average pool over H x W, then over frames.

The order of the additions changes, nothing else: `effvid.deploy.deployable` checks the logits.
The number of clips in a batch reaches the layers that need it (temporal convolutions, the
Former, the head) through a context variable, as the stream state does.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from effvid.deploy.frame_conv import FrameConv, clip_to_frames, frame_conv, repeat
from effvid.models.layers.convolution import FramewiseConv3d, PointwiseConv3d
from effvid.models.layers.dynamic_relu import DynamicReLU
from effvid.models.layers.streaming import CausalConv3d, StreamingLayer
from effvid.models.mobile_former import Former, FormerToMobile, MergeClassifier, MobileToFormer
from effvid.models.video_mobile_former import VideoMobileFormer

_CLIPS: ContextVar[int] = ContextVar("effvid_deployable_clips")


@contextmanager
def _clips_in_batch(clips: int) -> Iterator[None]:
    token = _CLIPS.set(clips)
    try:
        yield
    finally:
        _CLIPS.reset(token)


def _sets_over_positions(x: torch.Tensor, sets: int) -> torch.Tensor:
    """Frames (N * F, C, H, W) -> (N, C, F * H * W): each token set's positions, in (t, h, w)
    order, channels first."""
    images, channels, height, width = x.shape
    frames = images // sets
    grid = x.reshape(sets, frames, channels, height * width)
    if frames > 1:
        grid = grid.permute(0, 2, 1, 3)
    return grid.reshape(sets, channels, frames * height * width)


def _positions_to_frames(x: torch.Tensor, frame_shape: torch.Size) -> torch.Tensor:
    """The inverse of `_sets_over_positions`: (N, C, F * H * W) -> frames (N * F, C, H, W)."""
    images, channels, height, width = frame_shape
    sets = x.shape[0]
    grid = x.reshape(sets, channels, images // sets, height * width)
    if images > sets:
        grid = grid.permute(0, 2, 1, 3)
    return grid.reshape(frame_shape)


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(N, L, C) -> (N * heads, L, C / heads); head i holds channels [i*C/h, (i+1)*C/h)."""
    sets, length, channels = x.shape
    split = x.reshape(sets, length, heads, channels // heads).permute(0, 2, 1, 3)
    return split.reshape(sets * heads, length, channels // heads)


def _merge_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """The inverse of `_split_heads`: (N * heads, L, C / heads) -> (N, L, C)."""
    rows, length, width = x.shape
    merged = x.reshape(rows // heads, heads, length, width).permute(0, 2, 1, 3)
    return merged.reshape(rows // heads, length, heads * width)


def _attend(queries: torch.Tensor, keys_t: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Scaled queries (R, Lq, d), keys transposed (R, d, Lk), values (R, Lk, dv) -> (R, Lq, dv)."""
    return torch.bmm(torch.bmm(queries, keys_t).softmax(dim=-1), values)


def _scaled_linear(
    linear: nn.Linear, scale: float, shift: float = 0.0, rows: slice = slice(None)
) -> nn.Linear:
    """A Linear computing (linear(x) * scale + shift)[..., rows], from linear's weights."""
    weight = linear.weight[rows]
    scaled = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        scaled.weight.copy_(weight * scale)
        scaled.bias.copy_(linear.bias[rows] * scale + shift)
    return scaled


class TwiceHardsigmoid(nn.Module):
    """2 * hardsigmoid(linear(x)) - shift over the given output rows, computed as one Linear and a
    clamp: 2 * hardsigmoid(z) = clamp(z / 3 + 1, 0, 2). (..., D) -> (..., rows)."""

    def __init__(self, linear: nn.Linear, shift: float = 0.0, rows: slice = slice(None)) -> None:
        super().__init__()
        self.linear = _scaled_linear(linear, 1.0 / 3.0, 1.0 - shift, rows)
        self.low, self.high = -shift, 2.0 - shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardtanh(self.linear(x), self.low, self.high)


class TokenLayerNorm(nn.Module):
    """LayerNorm over the token width, tokens (N, L, D) -> (N, L, D), its mean and (biased)
    variance as global average pools of the 4-D view (N, L, D, 1)."""

    def __init__(self, norm: nn.LayerNorm) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight, self.bias = norm.weight, norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = x.reshape(*x.shape, 1)
        centred = grid - grid.mean(dim=(2, 3), keepdim=True)
        variance = (centred * centred).mean(dim=(2, 3), keepdim=True)
        normed = (centred * torch.rsqrt(variance + self.eps)).reshape(x.shape)
        return normed * self.weight + self.bias


class ConvOnFrames(nn.Module):
    """A `FrameConv` on the frames layout: x (B * T, C, H, W) -> (B * T', C', H', W')."""

    def __init__(self, conv: FrameConv) -> None:
        super().__init__()
        self.frame_conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_conv.on_frames(x, _CLIPS.get())


class FramesMobileToFormer(nn.Module):
    """`MobileToFormer`: x (N * F, C, H, W), tokens (N, M, D) -> tokens (N, M, D), each set
    attending over the F * H * W positions of its frames."""

    def __init__(self, bridge: MobileToFormer) -> None:
        super().__init__()
        self.heads = bridge.num_heads
        head_width = bridge.q.out_features // self.heads
        self.q = _scaled_linear(bridge.q, head_width**-0.5)
        self.gate = TwiceHardsigmoid(bridge.alpha[0])
        self.proj = bridge.proj
        self.layer_norm = TokenLayerNorm(bridge.layer_norm)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        sets, channels = tokens.shape[0], x.shape[1]
        keys_t = _sets_over_positions(x, sets).reshape(
            sets * self.heads, channels // self.heads, -1
        )
        queries = _split_heads(self.q(tokens), self.heads)
        attended = _merge_heads(_attend(queries, keys_t, keys_t.transpose(1, 2)), self.heads)
        return self.layer_norm(tokens + self.proj(attended * self.gate(tokens)))


class FramesFormerToMobile(nn.Module):
    """`FormerToMobile`: x (N * F, C, H, W), tokens (N, M, D) -> x (N * F, C, H, W), every
    position of a set's frames reading that set's tokens."""

    def __init__(self, bridge: FormerToMobile) -> None:
        super().__init__()
        self.heads = bridge.num_heads
        head_width = bridge.k.out_features // self.heads
        self.k = _scaled_linear(bridge.k, head_width**-0.5)
        self.proj = bridge.proj

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        sets, channels = tokens.shape[0], x.shape[1]
        positions = _sets_over_positions(x, sets)  # (N, C, P)
        queries = positions.reshape(sets * self.heads, channels // self.heads, -1).transpose(1, 2)
        keys_t = _split_heads(self.k(tokens), self.heads).transpose(1, 2)
        read = _attend(queries, keys_t, _split_heads(self.proj(tokens), self.heads))
        read = read.transpose(1, 2).reshape(positions.shape)
        return x + _positions_to_frames(read, x.shape)


class FramesFormer(StreamingLayer, nn.Module):
    """`Former`: tokens (N, M, D) -> (N, M, D). With one set per clip, each attends to itself;
    with sets per frame, all T * M tokens of a clip attend to each other, or (causal) frame t's
    to themselves and to frame t - 1's outputs (the layer's stream state, (B, M, D), zeros at
    the start of a stream)."""

    def __init__(self, former: Former, num_tokens: int) -> None:
        super().__init__()
        self.causal, self.heads = former.causal, former.num_heads
        self.stream_key = former.stream_key
        width = former.q.out_features
        self.q = _scaled_linear(former.q, (width // self.heads) ** -0.5)
        self.channel_mlp, self.ffn = former.channel_mlp, former.ffn
        self.layer_norm = TokenLayerNorm(former.layer_norm)
        self.ffn_norm = TokenLayerNorm(former.ffn_norm)
        if self.causal:
            self.register_buffer("start", torch.zeros(1, num_tokens, width), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        clips = _CLIPS.get()
        if self.causal:
            return self._causal(tokens, clips)
        flat = tokens.reshape(clips, -1, tokens.shape[-1])
        return self._update(flat, flat).reshape(tokens.shape)

    def _update(self, tokens: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """tokens (N, L, D) attend to keys = values (N, Lk, D) -> (N, L, D)."""
        queries = _split_heads(self.q(tokens), self.heads)
        keys_split = _split_heads(keys, self.heads)
        attended = _attend(queries, keys_split.transpose(1, 2), keys_split)
        tokens = self.layer_norm(tokens + self.channel_mlp(_merge_heads(attended, self.heads)))
        return self.ffn_norm(tokens + self.ffn(tokens))

    def _causal(self, tokens: torch.Tensor, clips: int) -> torch.Tensor:
        """Sets per frame (B * T, M, D) -> (B * T, M, D), frame by frame with the memory."""
        frames, shape = tokens.shape[0] // clips, (clips, 1, *tokens.shape[1:])
        memory = self.past()
        if memory is None:  # the start of a stream
            memory = repeat(self.start, clips, dim=0)
        if frames == 1:  # a step of one frame: no slicing (ExecuTorch would alias it)
            by_frame = [tokens]
        else:
            grid = tokens.reshape(clips, frames, -1)
            by_frame = [grid[:, t : t + 1].reshape(memory.shape) for t in range(frames)]
        outputs = []
        for frame in by_frame:
            memory = self._update(frame, torch.cat([frame, memory], dim=1))
            outputs.append(memory.reshape(shape))
        self.keep(memory)
        return memory if frames == 1 else torch.cat(outputs, dim=1).reshape(tokens.shape)


class FramesDynamicReLU(nn.Module):
    """`DynamicReLU`: x (N * F, C, H, W), tokens (N, M, D) -> (N * F, C, H, W), each set's
    slopes (from its token 0) applied to its F frames."""

    def __init__(self, relu: DynamicReLU) -> None:
        super().__init__()
        channels = relu.channels
        self.hidden = nn.Sequential(relu.hyper[0], relu.hyper[1])  # Linear, ReLU
        self.slope_positive = TwiceHardsigmoid(relu.hyper[2], 0.0, slice(0, channels))
        self.slope_negative = TwiceHardsigmoid(relu.hyper[2], 1.0, slice(channels, None))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.hidden(tokens[:, 0:1])  # (N, 1, D / reduction)
        frames = x.shape[0] // tokens.shape[0]
        positive, negative = (
            repeat(slope(hidden), frames, dim=1).reshape(x.shape[0], -1, 1, 1)
            for slope in (self.slope_positive, self.slope_negative)
        )
        return torch.maximum(x * positive, x * negative)


def _mean_over_frames(x: torch.Tensor, clips: int) -> torch.Tensor:
    """(B * T, K) -> (B, K), the mean over each clip's frames (a global average pool)."""
    frames = x.shape[0] // clips
    if frames == 1:
        return x
    grid = x.reshape(clips, frames, -1, 1).permute(0, 2, 1, 3)  # (B, K, T, 1)
    return grid.mean(dim=(2, 3), keepdim=True).reshape(clips, -1)


class FramesHead(nn.Module):
    """`MergeClassifier`: x (B * T, C, H, W), tokens (N, M, D) or None -> logits (B, K), or
    (B, T, K) per frame with `per_step` (a per-frame head, the causal model's)."""

    def __init__(self, head: MergeClassifier) -> None:
        super().__init__()
        self.conv, self.fc, self.classifier = head.conv, head.fc, head.classifier
        self.per_frame = head.per_frame

    def forward(
        self, x: torch.Tensor, tokens: torch.Tensor | None, per_step: bool = False
    ) -> torch.Tensor:
        clips = _CLIPS.get()
        pooled = self.conv(x).mean(dim=(2, 3), keepdim=True).reshape(x.shape[0], -1)
        first = None if tokens is None else tokens[:, 0:1].reshape(tokens.shape[0], -1)
        if not self.per_frame:
            pooled = F.hardswish(_mean_over_frames(pooled, clips))
            if first is not None:
                pooled = torch.cat([pooled, _mean_over_frames(first, clips)], dim=1)
            return self.classifier(self.fc(pooled))
        logits = self.classifier(self.fc(torch.cat([F.hardswish(pooled), first], dim=1)))
        return (
            logits.reshape(clips, -1, logits.shape[-1])
            if per_step
            else _mean_over_frames(logits, clips)
        )


class DeployableVMF(nn.Module):
    """A Video Mobile-Former in the frames layout: clips (B, 3, T, H, W) -> logits (B, K);
    `forward_steps` gives a causal model's logits per frame, (B, T, K). Built by
    `deployable_vmf`, from the modules of the (BatchNorm-folded) model."""

    def __init__(self, model: VideoMobileFormer) -> None:
        super().__init__()
        self.stem, self.features = model.stem, model.features
        self.local_global, self.classifier = model.local_global, model.classifier
        self.tokens = None
        if model.tokens is not None:  # (1, M, D)
            self.tokens = nn.Parameter(model.tokens.weight.detach().clone().unsqueeze(0))
        self.tokens_per_frame, self.causal = model.tokens_per_frame, model.causal

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self._run(clips, per_step=False)

    def forward_steps(self, clips: torch.Tensor) -> torch.Tensor:
        """A causal model's logits for every frame: (B, 3, T, H, W) -> (B, T, K)."""
        return self._run(clips, per_step=True)

    def _run(self, clips: torch.Tensor, per_step: bool) -> torch.Tensor:
        batch = clips.shape[0]
        with _clips_in_batch(batch):
            x = self.stem(clip_to_frames(clips))  # (B * T, C, H, W)
            tokens = None
            if self.tokens is not None:  # one set per clip, or per frame after the stem
                sets = x.shape[0] if self.tokens_per_frame else batch
                tokens = repeat(self.tokens, sets, dim=0)
            for block in self.features:
                x, tokens = block(x, tokens)
            if self.local_global is not None:
                tokens = self.local_global(x, tokens)
            return self.classifier(x, tokens, per_step)


CONVOLUTIONS = (nn.Conv3d, FramewiseConv3d, PointwiseConv3d, CausalConv3d)
REWRITES = {
    MobileToFormer: FramesMobileToFormer,
    FormerToMobile: FramesFormerToMobile,
    DynamicReLU: FramesDynamicReLU,
    MergeClassifier: FramesHead,
}


def deployable_vmf(model: VideoMobileFormer) -> DeployableVMF:
    """The frames-layout form of `model` (BatchNorms already folded; its modules are taken
    over, so pass a copy). Unchecked: `effvid.deploy.deployable` checks it."""
    for name, module in list(model.named_modules()):
        if type(module) in CONVOLUTIONS:
            model.set_submodule(name, ConvOnFrames(frame_conv(module)))
    num_tokens = 0 if model.tokens is None else model.tokens.num_embeddings
    for name, module in list(model.named_modules()):
        if type(module) in REWRITES:
            model.set_submodule(name, REWRITES[type(module)](module))
        elif type(module) is Former:
            model.set_submodule(name, FramesFormer(module, num_tokens))
    return DeployableVMF(model)
