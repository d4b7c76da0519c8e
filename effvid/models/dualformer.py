"""DualFormer: Local-Global Stratified Transformer for Efficient Video Recognition
(Liang et al., ECCV 2022, arXiv 2112.04674).

A four-stage video transformer. Inside each stage the blocks alternate between
- LW-MSA: attention inside non-overlapping (d, h, w) windows of tokens (even blocks), and
- GP-MSA: every token attends to a small pyramid of pooled context tokens (odd blocks): a fine
  level (a depthwise conv whose kernel equals its stride) and, in stages 0 and 1, a coarse level
  (two such convs with BatchNorm and ReLU between them), normalised together before the keys and
  values are projected. When the fine level would pool to a single token the block is plain full
  self-attention (stage 3 of every released model).
A depthwise 3x3x3 conv with a residual (PEG) follows the first block of every stage.

This file reproduces the official code (github.com/sail-sg/dualformer, commit 058c10c,
`mmaction/models/backbones/dualformer.py` and the I3D head): same parameter names
(`backbone.*`, `cls_head.fc_cls.*`, as in the official mmaction checkpoints), same outputs.
What we changed, none of which changes an output at the official input size:
- attention runs through `scaled_dot_product_attention`, windows are made by reshape/permute, and
  every per-stage size is derived from the actual input instead of being fixed at construction;
- so other input sizes work when they divide exactly (see `DualFormer.check_input_size`): the
  official model only runs at the `video_size` it was built for, and silently floor-crops in the
  pyramid and merging convs elsewhere. Here a size that would need cropping is refused with a
  message; a window larger than a stage's token grid is clamped to the grid (as Video Swin does).
"""

import inspect
import math
from collections.abc import Sequence
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from effvid.errors import InputError
from effvid.models.base import (
    CheckpointAdapter,
    ClassifierModel,
    Features,
    keyword_parameters,
    linear_classifier,
)
from effvid.models.constants import IMAGENET_MEAN, IMAGENET_STD
from effvid.models.layers import DropPath, use_channels_last
from effvid.models.registry import ModelCard, build_model, register_model

Size3d = tuple[int, int, int]
COARSE_FIRST_KERNEL: Size3d = (1, 7, 7)  # hard-coded in the official coarse pyramid


def _divide(grid: Sequence[int], kernel: Sequence[int]) -> Size3d:
    return tuple(g // k for g, k in zip(grid, kernel, strict=True))


def _divides(grid: Sequence[int], kernel: Sequence[int]) -> bool:
    return all(k > 0 and g % k == 0 for g, k in zip(grid, kernel, strict=True))


def _tokens_to_volume(x: torch.Tensor, grid: Size3d) -> torch.Tensor:
    """(B, D*H*W, C) -> (B, C, D, H, W); tokens are row-major over (D, H, W).

    Contiguous tokens are exactly the channels-last layout of the volume: this is a view."""
    return x.reshape(x.shape[0], *grid, x.shape[2]).permute(0, 4, 1, 2, 3)


def _volume_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, D, H, W) -> (B, D*H*W, C); a view when the volume is channels-last."""
    return x.permute(0, 2, 3, 4, 1).reshape(x.shape[0], -1, x.shape[1])


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, L, C) -> (B, heads, L, C / heads)."""
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, E) -> (B, L, heads * E)."""
    return x.transpose(1, 2).flatten(2)


class StageGeometry(NamedTuple):
    """Sizes of one stage for one input size: its token grid and the windows actually used."""

    grid: Size3d
    window: Size3d


class PatchEmbed(nn.Module):
    """Patchify (stage 0) or merge patches (stages 1-3): conv with kernel = stride, then LayerNorm.

    x: (B, Cin, D, H, W) -> tokens (B, D'*H'*W', Cout) with (D', H', W') = (D, H, W) // stride.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: Size3d) -> None:
        super().__init__()
        self.stride = tuple(stride)
        self.proj = nn.Conv3d(in_channels, out_channels, self.stride, stride=self.stride)
        self.norm = nn.LayerNorm(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(_volume_to_tokens(self.proj(x)))


class PositionalConv(nn.Module):
    """PEG (official `PosCNN`): x + depthwise 3x3x3 conv(x). tokens (B, N, C) -> (B, N, C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Conv3d(channels, channels, 3, padding=1, groups=channels))

    def forward(self, x: torch.Tensor, grid: Size3d) -> torch.Tensor:
        return x + _volume_to_tokens(self.proj(_tokens_to_volume(x, grid)))


class Mlp(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout. (B, N, C) -> (B, N, C)."""

    def __init__(self, channels: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, channels)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class _HeadsAttention(nn.Module):
    """What LW-MSA and GP-MSA share: the scaled softmax attention product over heads."""

    def __init__(self, num_heads: int, scale: float, attn_drop: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = scale
        self.attn_drop = attn_drop

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T * scale) v. q: (B, heads, Lq, E), k and v: (B, heads, Lk, E) -> like q."""
        dropout = self.attn_drop if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=self.scale)


class LocalWindowAttention(_HeadsAttention):
    """LW-MSA: multi-head self-attention inside non-overlapping, unshifted windows.

    x: (B, N, C) with N = D*H*W tokens of `geometry.grid`, windows of `geometry.window` (which
    divides the grid) -> (B, N, C).
    """

    def __init__(
        self, dim: int, num_heads: int, qkv_bias: bool, scale: float, attn_drop: float, drop: float
    ) -> None:
        super().__init__(num_heads, scale, attn_drop)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, geometry: StageGeometry) -> torch.Tensor:
        batch, _, channels = x.shape
        (d, h, w), (wd, wh, ww) = geometry.grid, geometry.window
        windows = (
            x.view(batch, d // wd, wd, h // wh, wh, w // ww, ww, channels)
            .permute(0, 1, 3, 5, 2, 4, 6, 7)
            .reshape(-1, wd * wh * ww, channels)
        )  # (B * num_windows, window volume, C)
        qkv = self.qkv(windows).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
        out = self.attend(qkv[0], qkv[1], qkv[2])  # (B * windows, heads, window volume, E)
        out = (  # un-window and merge the heads in one copy
            out.view(batch, d // wd, h // wh, w // ww, self.num_heads, wd, wh, ww, -1)
            .permute(0, 1, 5, 2, 6, 3, 7, 4, 8)
            .reshape(batch, d * h * w, channels)
        )
        return self.proj_drop(self.proj(out))


class GlobalPyramidAttention(_HeadsAttention):
    """GP-MSA: all tokens attend to pooled pyramid tokens (fine, then coarse), LayerNorm-ed.

    `fine_kernel` and `coarse_kernel` are the pooling kernels (= strides) at the size the model
    was built for; without a fine level (kernel volume 1) this is full self-attention.
    x: (B, N, C) -> (B, N, C).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool,
        scale: float,
        attn_drop: float,
        drop: float,
        fine_kernel: Size3d,
        coarse_kernel: Size3d | None,
    ) -> None:
        super().__init__(num_heads, scale, attn_drop)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop)
        self.sr = self.norm = self.lr = None
        if math.prod(fine_kernel) > 1:
            self.sr = nn.Conv3d(dim, dim, fine_kernel, stride=fine_kernel, groups=dim)
            self.norm = nn.LayerNorm(dim)
            if coarse_kernel is not None:
                second = _divide(coarse_kernel, COARSE_FIRST_KERNEL)
                if 0 in second:
                    raise InputError(
                        f"the coarse pyramid kernel {coarse_kernel} is smaller than the fixed "
                        f"first coarse kernel {COARSE_FIRST_KERNEL}: video_size too small for "
                        "coarse_pysizes (each stage-0/1 grid over coarse_pysize must be >= 7)"
                    )
                self.lr = nn.Sequential(
                    nn.Conv3d(dim, dim, COARSE_FIRST_KERNEL, COARSE_FIRST_KERNEL, groups=dim),
                    nn.BatchNorm3d(dim),
                    nn.ReLU(inplace=True),
                    nn.Conv3d(dim, dim, second, stride=second, groups=dim),
                )

    def pooling_kernels(self) -> list[Size3d]:
        """The kernels a stage's token grid must be divisible by (each applied to the grid)."""
        if self.sr is None:
            return []
        kernels = [self.sr.kernel_size]
        if self.lr is not None:
            kernels.append(_kernel_product(self.lr[0].kernel_size, self.lr[3].kernel_size))
        return kernels

    def forward(self, x: torch.Tensor, geometry: StageGeometry) -> torch.Tensor:
        q = _split_heads(self.q(x), self.num_heads)
        context = x
        if self.sr is not None:
            volume = _tokens_to_volume(x, geometry.grid)
            levels = [_volume_to_tokens(self.sr(volume))]
            if self.lr is not None:
                levels.append(_volume_to_tokens(self.lr(volume)))
            context = self.norm(torch.cat(levels, dim=1))
        k, v = self.kv(context).unflatten(-1, (2, -1)).unbind(2)
        out = self.attend(q, _split_heads(k, self.num_heads), _split_heads(v, self.num_heads))
        return self.proj_drop(self.proj(_merge_heads(out)))


def _kernel_product(first: Sequence[int], second: Sequence[int]) -> Size3d:
    return tuple(a * b for a, b in zip(first, second, strict=True))


class DualFormerBlock(nn.Module):
    """Pre-norm transformer block around an LW-MSA or GP-MSA attention. (B, N, C) -> (B, N, C)."""

    def __init__(
        self, attn: nn.Module, dim: int, mlp_hidden: int, drop: float, drop_path: float
    ) -> None:
        super().__init__()
        self.attn = attn
        self.norm1 = nn.LayerNorm(dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_hidden, drop)

    def forward(self, x: torch.Tensor, geometry: StageGeometry) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), geometry))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class DualFormerBackbone(nn.Module):
    """The four stages. x: (B, 3, T, H, W) -> features (B, C3, T / pt, H / 32, W / 32).

    Argument names and meanings are the official backbone's, so official configs carry over.
    """

    def __init__(
        self,
        *,
        video_size: Sequence[int] = (32, 224, 224),
        patch_size: Sequence[int] = (2, 4, 4),
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 256, 512),
        num_heads: Sequence[int] = (2, 4, 8, 16),
        mlp_ratios: Sequence[float] = (4, 4, 4, 4),
        qkv_bias: bool = True,
        qk_scale: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        depths: Sequence[int] = (2, 2, 10, 4),
        local_sizes: Sequence[Sequence[int]] = ((8, 7, 7),) * 4,
        fine_pysizes: Sequence[Sequence[int]] = ((8, 7, 7), (8, 7, 7), (8, 7, 7), (16, 7, 7)),
        coarse_pysizes: Sequence[Sequence[int]] = ((4, 4, 4),) * 4,
        temporal_pooling: Sequence[int] = (-1, 1, 1, 1),
    ) -> None:
        super().__init__()
        # Entry 0 is replaced by the patch size (the official code does the same, in place).
        strides = [tuple(patch_size)] + [(t, 2, 2) for t in temporal_pooling[1:]]
        self.video_size = tuple(video_size)
        self.local_sizes = [tuple(size) for size in local_sizes]
        self.num_features = embed_dims[-1]
        block_drop_paths = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()

        self.patch_embeds = nn.ModuleList()
        self.pos_drops = nn.ModuleList()
        self.blocks = nn.ModuleList()
        grid, in_channels = self.video_size, in_chans
        for stage, dim in enumerate(embed_dims):
            grid = _divide(grid, strides[stage])
            self.patch_embeds.append(PatchEmbed(in_channels, dim, strides[stage]))
            self.pos_drops.append(nn.Dropout(drop_rate))
            head_dim = dim // num_heads[stage]
            attention_args = dict(
                dim=dim,
                num_heads=num_heads[stage],
                qkv_bias=qkv_bias,
                scale=qk_scale or head_dim**-0.5,
                attn_drop=attn_drop_rate,
                drop=drop_rate,
            )
            fine_kernel = _divide(grid, fine_pysizes[stage])
            coarse_kernel = _divide(grid, coarse_pysizes[stage]) if stage < 2 else None
            stage_blocks = nn.ModuleList()
            # As in the official code, a (1, 1, 1) window makes every block of the stage global.
            local = tuple(local_sizes[stage]) != (1, 1, 1)
            for index in range(depths[stage]):
                if local and index % 2 == 0:
                    attn = LocalWindowAttention(**attention_args)
                else:
                    attn = GlobalPyramidAttention(
                        **attention_args, fine_kernel=fine_kernel, coarse_kernel=coarse_kernel
                    )
                drop_path = block_drop_paths[sum(depths[:stage]) + index]
                stage_blocks.append(
                    DualFormerBlock(attn, dim, int(dim * mlp_ratios[stage]), drop_rate, drop_path)
                )
            self.blocks.append(stage_blocks)
            in_channels = dim
        self.norm = nn.LayerNorm(self.num_features)
        self.pos_block = nn.ModuleList(PositionalConv(dim) for dim in embed_dims)
        self._stage_kernels = [
            sorted({k for block in stage[1::2] for k in block.attn.pooling_kernels()})
            for stage in self.blocks
        ]

    def stage_geometries(self, input_size: Sequence[int]) -> list[StageGeometry]:
        """Per-stage token grids and windows for an input (T, H, W).

        ValueError when the input would need cropping somewhere: a merge, a window or a pyramid
        pooling that does not divide the grid."""
        geometries = []
        grid = tuple(input_size)
        for stage, embed in enumerate(self.patch_embeds):
            problem = None
            if not _divides(grid, embed.stride):
                problem = f"patch {'embedding' if stage == 0 else 'merging'} stride {embed.stride}"
            grid = _divide(grid, embed.stride)
            window = tuple(min(w, g) for w, g in zip(self.local_sizes[stage], grid, strict=True))
            if problem is None and not _divides(grid, window):
                problem = f"local window {window}"
            for kernel in self._stage_kernels[stage]:
                if problem is None and not _divides(grid, kernel):
                    problem = f"pyramid pooling kernel {kernel}"
            if problem is not None:
                raise InputError(
                    f"DualFormer cannot take a clip of (T, H, W) = {tuple(input_size)} without "
                    f"cropping: at stage {stage} the token grid {grid} is not divisible by the "
                    f"{problem}. The model was built for {self.video_size}; sizes that work "
                    "divide exactly at every stage (for the released models: T = 8 or a "
                    "multiple of 16, H and W multiples of 224), or build the model with "
                    "video_size=(T, H, W)."
                )
            geometries.append(StageGeometry(grid, window))
        return geometries

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        geometries = self.stage_geometries(x.shape[2:])
        for stage, geometry in enumerate(geometries):
            x = self.pos_drops[stage](self.patch_embeds[stage](x))
            for index, block in enumerate(self.blocks[stage]):
                x = block(x, geometry)
                if index == 0:
                    x = self.pos_block[stage](x, geometry.grid)
            if stage < len(geometries) - 1:
                x = _tokens_to_volume(x, geometry.grid)
        return _tokens_to_volume(self.norm(x), geometries[-1].grid)


class I3DHead(nn.Module):
    """Average over (D, H, W), dropout, linear. features (B, C, D, H, W) -> logits (B, classes)."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc_cls = linear_classifier(in_channels, num_classes)  # the official init

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = x.flatten(2).mean(dim=2)
        return pooled if pre_logits else self.fc_cls(self.dropout(pooled))


def _prepare_official_checkpoint(
    model: "DualFormer", state: dict[str, torch.Tensor]
) -> tuple[dict, list[str]]:
    """Official layouts -> ours: add the `backbone.` prefix to a bare backbone state dict, drop
    the token-labelling head, and give a 2-D (ImageNet) checkpoint's coarse pyramid its official
    average-pooling init (1 / kernel volume, bias 0). Returns notes for the report."""
    notes = []
    for prefix, what in model.ignored_checkpoint_prefixes.items():
        dropped = [key for key in state if key.startswith(prefix)]
        if dropped:
            state = {k: v for k, v in state.items() if not k.startswith(prefix)}
            notes.append(f"ignored {len(dropped)} keys {prefix}* ({what})")
    if not any(key.startswith(("backbone.", "cls_head.")) for key in state):
        state = {f"backbone.{key}": value for key, value in state.items()}
        notes.append("read as a backbone-only checkpoint (keys prefixed with 'backbone.')")
    embed = state.get("backbone.patch_embeds.0.proj.weight")
    if embed is not None and embed.ndim == 4:
        coarse = model.average_pooling_coarse_kernels()
        state.update(coarse)
        notes.append(
            f"2-D checkpoint: {len(coarse) // 2} coarse pyramid convs set to average pooling"
        )
    return state, notes


class DualFormer(ClassifierModel):
    """DualFormer with its classification head: (B, 3, T, H, W) -> logits (B, num_classes).

    Keyword arguments are the official backbone's (`video_size`, `patch_size`, `embed_dims`,
    `num_heads`, `mlp_ratios`, `qkv_bias`, `qk_scale`, `drop_rate`, `attn_drop_rate`,
    `drop_path_rate`, `depths`, `local_sizes`, `fine_pysizes`, `coarse_pysizes`,
    `temporal_pooling`, `in_chans`) plus `num_classes` and `head_dropout` for the I3D head.
    """

    classifier_path = "cls_head.fc_cls"
    # Official checkpoints store weights under 'state_dict' with these two prefixes; a 2-D
    # ImageNet backbone file has the backbone's keys without prefix. Kernels inflate by the
    # official rule: replicated over time and divided by the temporal size.
    checkpoint_adapter = CheckpointAdapter(_prepare_official_checkpoint, inflation="replicate")
    # Training-only head of the token-labelling runs, present in some released checkpoints.
    ignored_checkpoint_prefixes: ClassVar[dict[str, str]] = {
        "cls_head.token_linear.": "the token-labelling training head"
    }

    def __init__(
        self, *, num_classes: int = 400, head_dropout: float = 0.5, **backbone_args
    ) -> None:
        super().__init__()
        self.backbone = DualFormerBackbone(**backbone_args)
        self.cls_head = I3DHead(self.backbone.num_features, num_classes, head_dropout)
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = self.backbone.num_features
        self.backbone.apply(_init_weights)
        use_channels_last(self, torch.channels_last_3d)  # see _tokens_to_volume

    def check_input_size(self, input_size: Sequence[int]) -> None:
        """Raise ValueError, saying why, if a clip of (T, H, W) cannot be run without cropping."""
        self.backbone.stage_geometries(input_size)

    @classmethod
    def constructor_parameters(cls) -> dict[str, inspect.Parameter]:
        """Its own and every parameter of the backbone it builds."""
        return {**super().constructor_parameters(), **keyword_parameters(DualFormerBackbone)}

    def forward_features(self, x: torch.Tensor) -> Features:
        """x: (B, 3, T, H, W) -> Features((B, C, T / 2, H / 32, W / 32)) after the final
        LayerNorm; DualFormer has no tokens."""
        if x.ndim != 5:
            raise InputError(
                f"DualFormer expects clips of shape (B, C, T, H, W), got {tuple(x.shape)}"
            )
        return Features(self.backbone(x))

    def forward_head(self, features: Features, pre_logits: bool = False) -> torch.Tensor:
        """Features -> logits (B, num_classes), or (B, head_hidden_size) pre-logits."""
        return self.cls_head(features.feature_map, pre_logits=pre_logits)

    def no_weight_decay(self) -> set[str]:
        """The official recipe exempts the PEG convs from weight decay."""
        return {
            name for name, _ in self.named_parameters() if name.startswith("backbone.pos_block.")
        }

    def average_pooling_coarse_kernels(self) -> dict[str, torch.Tensor]:
        kernels = {}
        for name, module in self.named_modules():
            if isinstance(module, GlobalPyramidAttention) and module.lr is not None:
                conv = module.lr[3]
                volume = math.prod(conv.kernel_size)
                kernels[f"{name}.lr.3.weight"] = torch.full_like(conv.weight, 1.0 / volume)
                kernels[f"{name}.lr.3.bias"] = torch.zeros_like(conv.bias)
        return kernels


@torch.no_grad()
def _init_weights(module: nn.Module) -> None:
    """The official init: Linear trunc-normal(0.02) with zero bias, LayerNorm 1 / 0; convs and
    BatchNorm3d keep PyTorch's defaults."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


DUALFORMER_SOURCE = (
    "DualFormer (arXiv 2112.04674); official code github.com/sail-sg/dualformer 058c10c"
)

# fmt: off
DUALFORMER_CONFIGS: dict[str, dict] = {
    "t": dict(embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), depths=(2, 2, 10, 4),
              drop_path_rate=0.1),
    "s": dict(embed_dims=(96, 192, 384, 768), num_heads=(3, 6, 12, 24), depths=(2, 2, 18, 2),
              drop_path_rate=0.2),
    "b": dict(embed_dims=(128, 256, 512, 1024), num_heads=(4, 8, 16, 32), depths=(2, 2, 18, 2),
              drop_path_rate=0.3),
}
# fmt: on


def _dualformer_card(variant: str, params: int, flops: int, top1: float) -> ModelCard:
    return ModelCard(
        name=f"dualformer_{variant}",
        family="dualformer",
        num_frames=32,
        sampling_rate=2,
        input_size=224,
        mean=IMAGENET_MEAN,  # the official [123.675, 116.28, 103.53] / 255
        std=IMAGENET_STD,  # the official [58.395, 57.12, 57.375] / 255
        num_classes=400,
        test_clips=4,
        test_crops=1,
        params=params,
        flops_per_view=flops,
        source=DUALFORMER_SOURCE,
        notes=(
            f"Kinetics-400 recipe (ImageNet-1k init): {top1}% top-1 reported at 4x1 views; "
            "test: short side 224, centre crop 224, mean of softmax over views."
        ),
    )


def _create_dualformer(variant: str, **overrides) -> DualFormer:
    return build_model(DualFormer, DUALFORMER_CONFIGS[variant], overrides)


@register_model(_dualformer_card("t", params=21_972_560, flops=60_088_817_152, top1=79.5))
def dualformer_t(**overrides) -> DualFormer:
    return _create_dualformer("t", **overrides)


@register_model(_dualformer_card("s", params=49_215_664, flops=158_687_449_344, top1=80.6))
def dualformer_s(**overrides) -> DualFormer:
    return _create_dualformer("s", **overrides)


@register_model(_dualformer_card("b", params=87_247_632, flops=267_966_049_280, top1=81.1))
def dualformer_b(**overrides) -> DualFormer:
    return _create_dualformer("b", **overrides)
