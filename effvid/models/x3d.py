"""X3D: Expanding Architectures for Efficient Video Recognition (Feichtenhofer, CVPR 2020,
arXiv 2004.04730): X3D-XS, X3D-S and X3D-M, the efficient-CNN baselines of Video Mobile-Former.

A ResNet of depthwise-separable bottlenecks expanded along the X3D axes: stem of a 1x3x3 conv
(stride 1x2x2) then a depthwise 5x1x1 conv; four stages of widths 24/48/96/192 (inner width
2.25x), depths 3/5/11/7, spatial stride 2 at each stage start, never a temporal stride;
squeeze-excitation on every other block, swish after the depthwise conv; a head that expands to
432 channels, pools, projects to 2048 and classifies. XS, S and M share the weights' shapes
(3.79 M parameters) and differ only by their input: 4x160^2, 13x160^2, 16x224^2.

State-dict names are PyTorchVideo's (`pytorchvideo.models.x3d.create_x3d`, hub `x3d_xs/s/m`), so
its released Kinetics-400 checkpoints load directly. Two differences, by design:
- the model returns logits; PyTorchVideo's hub model ends with a softmax (apply it to compare);
- the head averages over every position before its 2048-d projection, for any input size;
  PyTorchVideo pools with a fixed window computed from the training input, then averages the
  per-window softmax scores. Both are identical at the native input size.
"""

import torch
import torch.nn.functional as F
from torch import nn

from effvid.errors import InputError
from effvid.models.base import ClassifierModel, Features, linear_classifier
from effvid.models.layers import temporal_depthwise_conv
from effvid.models.layers.convolution import FramewiseConv3d, PointwiseConv3d
from effvid.models.layers.pooling import mean_over_positions
from effvid.models.registry import ModelCard, build_model, register_model

X3D_MEAN = (0.45, 0.45, 0.45)
X3D_STD = (0.225, 0.225, 0.225)


def _round_width(width: float, divisor: int = 8, min_width: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never 10% below it (the X3D rule)."""
    rounded = max(min_width, int(width + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * width else rounded)


class Stem(nn.Module):
    """Spatial 1x3x3 conv (stride 1x2x2), depthwise temporal 5x1x1 conv, BN, ReLU.

    x: (B, 3, T, H, W) -> (B, C, T, H/2, W/2). PyTorchVideo names the spatial conv `conv_t` and
    the temporal one `conv_xy`; the names are kept for checkpoint compatibility.
    """

    def __init__(self, in_channels: int, out_channels: int, temporal_kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Module()
        self.conv.conv_t = FramewiseConv3d(
            in_channels, out_channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False
        )
        self.conv.conv_xy = temporal_depthwise_conv(out_channels, temporal_kernel)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv.conv_xy(self.conv.conv_t(x))))


class SqueezeExcitation(nn.Module):
    """x * sigmoid(conv(relu(conv(mean over T, H, W)))). (B, C, T, H, W) -> same."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            PointwiseConv3d(channels, reduced, 1),
            nn.ReLU(inplace=True),
            PointwiseConv3d(reduced, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(mean_over_positions(x))


class Bottleneck(nn.Module):
    """1x1x1 conv + BN + ReLU, depthwise 3x3x3 conv (stride 1x2x2 first in a stage) + BN
    [+ squeeze-excitation] + swish, 1x1x1 conv + BN. (B, Cin, T, H, W) -> (B, Cout, T, H', W')."""

    def __init__(
        self, in_channels: int, inner: int, out_channels: int, stride: int, use_se: bool
    ) -> None:
        super().__init__()
        self.conv_a = PointwiseConv3d(in_channels, inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(inner)
        self.conv_b = nn.Conv3d(
            inner, inner, 3, stride=(1, stride, stride), padding=1, groups=inner, bias=False
        )
        squeeze = SqueezeExcitation(inner, _round_width(inner / 16)) if use_se else nn.Identity()
        self.norm_b = nn.Sequential(nn.BatchNorm3d(inner), squeeze)
        self.conv_c = PointwiseConv3d(inner, out_channels, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm_a(self.conv_a(x)))
        x = F.silu(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    """ReLU(shortcut + bottleneck); the shortcut is projected (1x1x1 conv, BN if widths differ)
    in the first block of a stage. (B, Cin, T, H, W) -> (B, Cout, T, H', W')."""

    def __init__(
        self, in_channels: int, inner: int, out_channels: int, stride: int, use_se: bool
    ) -> None:
        super().__init__()
        self.branch1_conv = self.branch1_norm = None
        if in_channels != out_channels or stride > 1:
            self.branch1_conv = PointwiseConv3d(
                in_channels, out_channels, 1, stride=(1, stride, stride), bias=False
            )
        if in_channels != out_channels:
            self.branch1_norm = nn.BatchNorm3d(out_channels)
        self.branch2 = Bottleneck(in_channels, inner, out_channels, stride, use_se)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_conv(x)
        if self.branch1_norm is not None:
            shortcut = self.branch1_norm(shortcut)
        return F.relu(shortcut + self.branch2(x))


class ResStage(nn.Module):
    """`depth` residual blocks; the first has the stride, every other one (from the first)
    squeeze-excitation."""

    def __init__(self, depth: int, in_channels: int, inner: int, out_channels: int) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(
            ResBlock(
                in_channels if index == 0 else out_channels,
                inner,
                out_channels,
                stride=2 if index == 0 else 1,
                use_se=index % 2 == 0,
            )
            for index in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class ProjectedPool(nn.Module):
    """1x1x1 conv + BN + ReLU, global average, 1x1x1 conv + ReLU. (B, C, T, H, W) -> (B, D)."""

    def __init__(self, in_channels: int, inner: int, out_channels: int) -> None:
        super().__init__()
        self.pre_conv = PointwiseConv3d(in_channels, inner, 1, bias=False)
        self.pre_norm = nn.BatchNorm3d(inner)
        self.post_conv = PointwiseConv3d(inner, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = mean_over_positions(F.relu(self.pre_norm(self.pre_conv(x))))
        return F.relu(self.post_conv(x)).flatten(1)


class X3DHead(nn.Module):
    """Projected pooling, dropout, linear classifier. (B, C, T, H, W) -> logits (B, classes)."""

    def __init__(
        self, in_channels: int, inner: int, hidden: int, num_classes: int, dropout: float
    ) -> None:
        super().__init__()
        self.pool = ProjectedPool(in_channels, inner, hidden)
        self.dropout = nn.Dropout(dropout)
        self.proj = linear_classifier(hidden, num_classes, init=False)  # X3D's init follows

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = self.pool(x)
        return pooled if pre_logits else self.proj(self.dropout(pooled))


class X3D(ClassifierModel):
    """X3D: clips (B, 3, T, H, W) -> logits (B, num_classes). `blocks` = stem, 4 stages, head."""

    classifier_path = "blocks.5.proj"

    def __init__(
        self,
        *,
        num_classes: int = 400,
        in_chans: int = 3,
        stem_channels: int = 24,
        stage_channels: tuple[int, ...] = (24, 48, 96, 192),
        stage_depths: tuple[int, ...] = (3, 5, 11, 7),
        bottleneck_factor: float = 2.25,
        head_hidden: int = 2048,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_features = stage_channels[-1]
        self.head_hidden_size = head_hidden
        blocks: list[nn.Module] = [Stem(in_chans, stem_channels)]
        in_channels = stem_channels
        for channels, depth in zip(stage_channels, stage_depths, strict=True):
            inner = int(bottleneck_factor * channels)
            blocks.append(ResStage(depth, in_channels, inner, channels))
            in_channels = channels
        head_inner = int(bottleneck_factor * stage_channels[-1])
        blocks.append(X3DHead(in_channels, head_inner, head_hidden, num_classes, dropout))
        self.blocks = nn.ModuleList(blocks)
        self.apply(_init_weights)
        with torch.no_grad():  # every residual block starts as the identity (PyTorchVideo)
            for stage in self.blocks[1:-1]:
                for block in stage.res_blocks:
                    block.branch2.norm_c.weight.zero_()

    def forward_features(self, x: torch.Tensor) -> Features:
        """x: (B, 3, T, H, W) -> Features((B, 192, T, H/32, W/32)); X3D has no tokens."""
        if x.ndim != 5:
            raise InputError(f"X3D expects clips of shape (B, C, T, H, W), got {tuple(x.shape)}")
        for block in self.blocks[:-1]:
            x = block(x)
        return Features(x)

    def forward_head(self, features: Features, pre_logits: bool = False) -> torch.Tensor:
        """Features -> logits (B, num_classes), or (B, head_hidden_size) pre-logits."""
        return self.blocks[-1](features.feature_map, pre_logits=pre_logits)


@torch.no_grad()
def _init_weights(module: nn.Module) -> None:
    """PyTorchVideo's ResNet init (`init_net_weights`): conv He-normal (fan out), BN weight 1 and
    bias 0, Linear N(0, 0.01)/0; `X3D` then zeroes the last BN weight of every bottleneck."""
    if isinstance(module, nn.Conv3d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm3d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.01)
        nn.init.zeros_(module.bias)


X3D_SOURCE = (
    "X3D (arXiv 2004.04730); layer names and semantics of PyTorchVideo's create_x3d / hub "
    "x3d_xs, x3d_s, x3d_m (checkpoint-compatible)"
)


def _x3d_card(
    variant: str, frames: int, rate: int, size: int, flops: int, conv_linear: int
) -> ModelCard:
    return ModelCard(
        name=f"x3d_{variant}",
        family="x3d",
        num_frames=frames,
        sampling_rate=rate,
        input_size=size,
        mean=X3D_MEAN,
        std=X3D_STD,
        num_classes=400,
        test_clips=10,
        test_crops=3,
        params=3_794_274,
        flops_per_view=flops,
        source=X3D_SOURCE,
        notes=(
            f"conv + linear only: {conv_linear / 1e9:.3f} GFLOPs per view (the published figure); "
            "the total also counts BatchNorm (as fvcore does) and average pooling. "
            "Kinetics-400, 10 clips x 3 crops (PySlowFast tests XS and S on crops of 182 px)."
        ),
    )


def _create_x3d(**overrides) -> X3D:
    return build_model(X3D, {}, overrides)


@register_model(_x3d_card("xs", 4, 12, 160, flops=628_090_112, conv_linear=605_256_512))
def x3d_xs(**overrides) -> X3D:
    return _create_x3d(**overrides)


@register_model(_x3d_card("s", 13, 6, 160, flops=2_037_101_312, conv_linear=1_962_892_112))
def x3d_s(**overrides) -> X3D:
    return _create_x3d(**overrides)


@register_model(_x3d_card("m", 16, 5, 224, flops=4_911_484_160, conv_linear=4_732_468_736))
def x3d_m(**overrides) -> X3D:
    return _create_x3d(**overrides)
