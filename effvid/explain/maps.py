"""What a video model looks at, as maps over the clip's positions.

- `token_attention`: for (Video) Mobile-Former, where each global token attends in every
  Mobile->Former bridge: per bridge a (B, M, T', H', W') map that sums to 1 over the T'*H'*W'
  positions of that bridge's feature map, for each token (mean over the bridge's heads; with
  tokens per frame, token m of every frame, each frame's attention weighted 1/T).
- `grad_cam`: for any model with `forward_features` / `forward_head` (DualFormer, X3D, VMF), the
  Grad-CAM of the last feature map for a target class (Selvaraju et al., ICCV 2017).
- `to_clip_size`: any such map resized to the input clip and renormalised to sum to 1.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from effvid.models.layers.tokens import is_per_frame
from effvid.models.mobile_former import MobileFormer, MobileToFormer


@dataclass(frozen=True)
class BridgeAttention:
    """The token attention of one Mobile->Former bridge.

    `name`: the bridge's module path (e.g. 'features.3.local_global'; 'local_global' is the
    final bridge before the head). `weights`: (B, M, T', H', W') for clips, (B, M, H', W') for
    images; for each sample and token the entries sum to 1.
    """

    name: str
    weights: torch.Tensor


def _bridges(model: nn.Module) -> list[tuple[str, MobileToFormer]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, MobileToFormer)]


def bridge_names(model: nn.Module) -> list[str]:
    """The model's Mobile->Former bridges in the order the tokens pass through them (none for
    a model without global tokens)."""
    return [name for name, _ in _bridges(model)]


@torch.no_grad()
def token_attention(
    model: MobileFormer, clip: torch.Tensor
) -> tuple[torch.Tensor, list[BridgeAttention]]:
    """Run `model` on `clip` (B, 3, T, H, W) and record every bridge's token attention.

    Returns (logits (B, classes), one `BridgeAttention` per bridge in network order).
    ValueError for a model without Mobile->Former bridges (e.g. `global_branch=False`).
    """
    bridges = _bridges(model)
    if not bridges:
        raise ValueError(
            f"{type(model).__name__} has no Mobile->Former bridge (no global tokens): use "
            "Grad-CAM (method 'grad-cam') for this model"
        )
    recorded: list[BridgeAttention] = []

    def record(name: str):
        def hook(module: MobileToFormer, args: tuple, output: torch.Tensor) -> None:
            x, tokens = args
            weights = module.attention_weights(x, tokens)
            if is_per_frame(tokens):  # per frame (B, T, heads, M, H*W): token m's frames, each 1/T
                weights = weights.mean(dim=2).transpose(1, 2) / weights.shape[1]
            else:  # (B, heads, M, N)
                weights = weights.mean(dim=1)
            recorded.append(
                BridgeAttention(name, weights.reshape(*weights.shape[:2], *x.shape[2:]))
            )

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in bridges]
    try:
        logits = model(clip)
    finally:
        for handle in handles:
            handle.remove()
    return logits, recorded


def grad_cam(
    model: nn.Module, clip: torch.Tensor, target: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM of the last feature map of `model` for class `target` (default: the top class).

    clip (B, 3, T, H, W) -> (logits (B, classes), maps (B, T', H', W')) with the maps >= 0 and
    summing to 1 per sample (uniform where the class gets no positive evidence).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            features = model.forward_features(clip)
            feature_map = features.feature_map
            feature_map.retain_grad()
            logits = model.forward_head(features)
            classes = (
                logits.argmax(dim=1)
                if target is None
                else torch.full_like(logits[:, 0], target, dtype=torch.long)
            )
            logits.gather(1, classes[:, None]).sum().backward()
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    spatial = tuple(range(2, feature_map.ndim))
    channel_weights = feature_map.grad.mean(dim=spatial, keepdim=True)
    cam = F.relu((channel_weights * feature_map).sum(dim=1)).detach()
    return logits.detach(), _normalise(cam, cam.ndim - 1)


def to_clip_size(maps: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """Resize maps (..., T', H', W') to `size` (T, H, W) (trilinear; bilinear for 2-D maps)
    and renormalise so that each map still sums to 1 over its positions."""
    leading = maps.shape[: maps.ndim - len(size)]
    flat = maps.reshape(-1, 1, *maps.shape[len(leading) :]).float()
    mode = "trilinear" if len(size) == 3 else "bilinear"
    resized = F.interpolate(flat, size=size, mode=mode, align_corners=False)
    return _normalise(resized.reshape(*leading, *size).clamp_min(0.0), len(size))


def _normalise(maps: torch.Tensor, positions: int) -> torch.Tensor:
    """Divide each map (its last `positions` dimensions) by its sum; an all-zero map becomes
    uniform."""
    flat = maps.reshape(*maps.shape[: maps.ndim - positions], -1)
    total = flat.sum(dim=-1, keepdim=True)
    uniform = torch.full_like(flat, 1.0 / flat.shape[-1])
    return torch.where(total > 0, flat / total.clamp_min(1e-30), uniform).reshape(maps.shape)
