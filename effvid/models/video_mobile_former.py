"""Video Mobile-Former: Video Recognition with Efficient Global Spatial-temporal Modeling
(Wang et al., arXiv 2208.12257).

From the paper (its abstract, the only part retrievable): a lightweight 3D-CNN for local context
and a Transformer over very few global tokens (e.g. 6) *for a whole video* run in parallel and
exchange information by cross-attention; the family spans 500M to 6G total FLOPs, with members
under 1G.

No VMF code was ever released, and the method section is not available. Everything below the
abstract level is effvid's reconstruction (docs/models.md, "Where each model comes from"): the
image Mobile-Former of `mobile_former.py`, unchanged (its authors' code), with time added only
where needed:
- every depthwise conv becomes 3x3x3 (temporal kernel 1 or 3, or (2+1)-D as an option), with
  spatial stride only; pointwise convs become 1x1x1; the stem is 3x3x3 with stride (1, 2, 2);
- one token set per clip: the bridges attend over all T*H*W positions, the dynamic ReLUs get
  clip-level coefficients from token 0, broadcast over T*H*W (tokens per frame: an ablation);
- the head pools over T*H*W.
With these choices an image Mobile-Former checkpoint inflates into the matching VMF
(`effvid.load_checkpoint`); with centre inflation the VMF then equals the image model applied to
every frame, the tokens pooling over all frames.
"""

import torch
from torch import nn

from effvid.models.constants import IMAGENET_MEAN, IMAGENET_STD
from effvid.models.layers.convolution import (
    FramewiseConv3d,
    PointwiseConv3d,
    temporal_depthwise_conv,
    video_conv,
)
from effvid.models.layers.streaming import StreamState, name_streaming_layers
from effvid.models.mobile_former import MOBILE_FORMER_CONFIGS, ConvLayers, MobileFormer
from effvid.models.registry import ModelCard, build_model, register_model


class FactorizedDepthwiseConv3d(nn.Module):
    """(2+1)-D depthwise conv: 1x3x3 spatial (channel multiplier, stride) then kt x 1 x 1 temporal
    (causal, when asked).

    x: (B, Cin, T, H, W) -> (B, Cout, T, H / stride, W / stride).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        temporal_kernel: int,
        causal: bool = False,
    ) -> None:
        super().__init__()
        self.spatial = video_conv(
            in_channels, out_channels, (1, 3, 3), stride=(1, stride, stride), groups=in_channels
        )
        self.temporal = temporal_depthwise_conv(out_channels, temporal_kernel, causal=causal)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.temporal(self.spatial(x))


class VideoConvLayers(ConvLayers):
    """The convolutions of a Mobile-Former over clips (B, C, T, H, W); never strided in time
    except, optionally, in the stem. `causal`: no conv sees a future frame."""

    input_ndim = 5
    input_layout = "(B, C, T, H, W)"
    memory_format = torch.channels_last_3d

    def __init__(
        self,
        *,
        temporal_kernel: int = 3,
        factorized_depthwise: bool = False,
        stem_temporal_kernel: int = 3,
        stem_temporal_stride: int = 1,
        causal: bool = False,
    ) -> None:
        for name, kernel in [
            ("temporal_kernel", temporal_kernel),
            ("stem_temporal_kernel", stem_temporal_kernel),
        ]:
            if kernel < 1 or kernel % 2 == 0:
                raise ValueError(f"{name} must be an odd positive size, got {kernel}")
        if factorized_depthwise and temporal_kernel == 1:
            raise ValueError("factorized_depthwise=True needs temporal_kernel > 1")
        if stem_temporal_stride < 1:
            raise ValueError(f"stem_temporal_stride must be >= 1, got {stem_temporal_stride}")
        if causal and stem_temporal_stride != 1:
            raise ValueError("causal=True streams frame by frame: stem_temporal_stride must be 1")
        self.temporal_kernel = temporal_kernel
        self.factorized_depthwise = factorized_depthwise
        self.stem_temporal_kernel = stem_temporal_kernel
        self.stem_temporal_stride = stem_temporal_stride
        self.causal = causal

    def stem(self, in_channels: int, out_channels: int) -> nn.Module:
        kernel = (self.stem_temporal_kernel, 3, 3)
        if not self.causal and self.stem_temporal_stride == 1:  # oneDNN's 2-D path on CPU
            return FramewiseConv3d(
                in_channels, out_channels, kernel, stride=(1, 2, 2), padding=(kernel[0] // 2, 1, 1),
                bias=False,
            )  # fmt: skip
        return video_conv(
            in_channels,
            out_channels,
            kernel,
            stride=(self.stem_temporal_stride, 2, 2),
            causal=self.causal,
        )

    def depthwise(self, in_channels: int, out_channels: int, stride: int) -> nn.Module:
        kernel = self.temporal_kernel
        if self.factorized_depthwise:
            return FactorizedDepthwiseConv3d(in_channels, out_channels, stride, kernel, self.causal)
        return video_conv(
            in_channels,
            out_channels,
            (kernel, 3, 3),
            stride=(1, stride, stride),
            groups=in_channels,
            causal=self.causal,
        )

    def pointwise(self, in_channels: int, out_channels: int, groups: int = 1) -> nn.Module:
        return PointwiseConv3d(in_channels, out_channels, 1, groups=groups, bias=False)

    def norm(self, channels: int) -> nn.Module:
        return nn.BatchNorm3d(channels)


class VideoMobileFormer(MobileFormer):
    """Video Mobile-Former: clips (B, 3, T, H, W) -> logits (B, num_classes).

    Takes every argument of `MobileFormer` (the per-variant tables, tokens, the ablation
    switches `global_branch`, `mobile_to_former`, `former_to_mobile`, `dynamic_relu`) plus
    the temporal choices: `temporal_kernel` (1 or 3, depthwise convs),
    `factorized_depthwise` ((2+1)-D depthwise), `stem_temporal_kernel` and
    `stem_temporal_stride`.

    `tokens_per_frame=True` (an ablation; the paper uses one set per clip): every frame after
    the stem gets its own copy of the M learned tokens, (B, T, M, D). Each frame's tokens read
    and write only that frame in the bridges, drive that frame's dynamic ReLUs, and attend to
    all T*M tokens of the clip in the Former; the head takes token 0 averaged over frames. The
    weights are those of the per-clip model, so checkpoints load into either.

    `causal=True` (the streaming VMF, ours): nothing depends on a later frame. Every temporal
    conv pads only on the past side; every frame has its own token set (as with tokens per
    frame), and each Former layer lets a frame's tokens attend to themselves and to that
    layer's tokens of the previous frame (one frame of token memory, carried along a stream);
    the head gives every frame its own logits, the clip's logits being their mean. On a whole
    clip it trains like any model; `stream_step` then runs it on a live stream, a chunk of any
    length at a time, with constant memory. The weights are those of the other variants.
    """

    def __init__(
        self,
        *,
        tokens_per_frame: bool = False,
        causal: bool = False,
        temporal_kernel: int = 3,
        factorized_depthwise: bool = False,
        stem_temporal_kernel: int = 3,
        stem_temporal_stride: int = 1,
        num_classes: int = 400,
        **mobile_former_args,
    ) -> None:
        layers = VideoConvLayers(
            temporal_kernel=temporal_kernel,
            factorized_depthwise=factorized_depthwise,
            stem_temporal_kernel=stem_temporal_kernel,
            stem_temporal_stride=stem_temporal_stride,
            causal=causal,
        )
        super().__init__(
            num_classes=num_classes, conv_layers=layers, causal=causal, **mobile_former_args
        )
        if tokens_per_frame and self.tokens is None:
            raise ValueError("tokens_per_frame=True needs the global branch (global_branch=True)")
        self.tokens_per_frame = tokens_per_frame or causal
        self.causal = causal
        name_streaming_layers(self)

    def forward_steps(self, x: torch.Tensor) -> torch.Tensor:
        """A causal model's logits for every frame of the clips: (B, 3, T, H, W) -> (B, T, K);
        frame t's depend on frames 0..t only."""
        self._require_causal()
        features = self.forward_features(x)
        return self.classifier(features.feature_map, features.tokens, per_step=True)

    def init_stream(self, batch_size: int = 1) -> StreamState:
        """The state at the start of `batch_size` streams (zero history; filled by the first
        step). It holds, per temporal conv, its last kt - 1 input frames, and per Former layer,
        its tokens of the last frame: its size does not grow with the stream."""
        self._require_causal()
        return StreamState(batch_size=batch_size)

    def stream_step(
        self, frames: torch.Tensor, state: StreamState
    ) -> tuple[torch.Tensor, StreamState]:
        """The next frames of the streams, (B, 3, k, H, W) with k >= 1 -> their logits
        (B, k, K) and the state after them, equal to `forward_steps` on the whole stream."""
        self._require_causal()
        if frames.shape[0] != state.batch_size:
            raise ValueError(f"the state is for {state.batch_size} streams, got {frames.shape[0]}")
        with state.active():
            logits = self.forward_steps(frames)
        return logits, state

    def _require_causal(self) -> None:
        if not self.causal:
            raise ValueError(f"{type(self).__name__} streams only when built with causal=True")


VMF_SOURCE = (
    "Video Mobile-Former (arXiv 2208.12257): parallel 3D-CNN + few global tokens per clip + "
    "cross-attention bridges, 0.5-6G total FLOPs [paper]; blocks, bridges, Former, dynamic ReLU "
    "and head from Mobile-Former's authors' code (AAboys/MobileFormer) [MF code]; 3x3x3 "
    "depthwise, 3x3x3 stem with stride (1,2,2), no temporal stride, tokens over T*H*W, "
    "variant sizes and test views [effvid reconstruction]"
)


def _vmf_card(
    name: str, base: str, frames: int, size: int, clips: int, crops: int, params: int, flops: int
) -> ModelCard:
    return ModelCard(
        name=name,
        family="video_mobile_former",
        num_frames=frames,
        sampling_rate=8,
        input_size=size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        num_classes=400,
        test_clips=clips,
        test_crops=crops,
        params=params,
        flops_per_view=flops,
        source=VMF_SOURCE,
        notes=(
            f"Mobile-Former {base.upper()} tables inflated to 3-D; Kinetics-400 head; "
            "ImageNet mean/std so that image Mobile-Former weights inflate directly. "
            "No published VMF result exists to compare with."
        ),
        extras={"image_base": f"mobileformer_{base}"},
    )


def _create_vmf(base: str, **overrides) -> VideoMobileFormer:
    return build_model(VideoMobileFormer, MOBILE_FORMER_CONFIGS[base], overrides)


# The ladder: 8 frames x interval 8, 2 clips x 1 centre crop; 160 px up to 1 GFLOP total, 224 above.
@register_model(_vmf_card("vmf_xxs", "52m", 8, 160, 2, 1, params=2_898_804, flops=260_863_872))
def vmf_xxs(**overrides) -> VideoMobileFormer:
    return _create_vmf("52m", **overrides)


@register_model(_vmf_card("vmf_xs", "96m", 8, 160, 2, 1, params=3_878_068, flops=496_622_208))
def vmf_xs(**overrides) -> VideoMobileFormer:
    return _create_vmf("96m", **overrides)


@register_model(_vmf_card("vmf_s", "151m", 8, 224, 2, 1, params=6_912_836, flops=1_346_123_904))
def vmf_s(**overrides) -> VideoMobileFormer:
    return _create_vmf("151m", **overrides)


@register_model(_vmf_card("vmf_m", "214m", 8, 224, 2, 1, params=8_572_888, flops=1_878_475_648))
def vmf_m(**overrides) -> VideoMobileFormer:
    return _create_vmf("214m", **overrides)


@register_model(_vmf_card("vmf_l", "294m", 8, 224, 2, 1, params=10_398_496, flops=2_598_598_656))
def vmf_l(**overrides) -> VideoMobileFormer:
    return _create_vmf("294m", **overrides)
