"""What a video model looks at: token attention (Mobile-Former family) and Grad-CAM (any model),
as heat maps over the frames of a clip (`effvid explain`)."""

from effvid.explain.explain import Explanation, explain_video
from effvid.explain.maps import (
    BridgeAttention,
    bridge_names,
    grad_cam,
    to_clip_size,
    token_attention,
)

__all__ = [
    "BridgeAttention",
    "Explanation",
    "bridge_names",
    "explain_video",
    "grad_cam",
    "to_clip_size",
    "token_attention",
]
