"""RandAugment (Cubuk et al., arXiv 1909.13719) for video: each clip draws `num_ops` operations and
their signs once, and every frame gets exactly the same ones.

The operation list and magnitude ranges are those of torchvision's `RandAugment` (magnitude `m` of
`num_magnitude_bins`), implemented on uint8 `(T, C, H, W)` frames with `video_ops`; geometric
operations fill uncovered pixels with black.
"""

import math
from collections.abc import Callable

import torch

from effvid.data import video_ops
from effvid.errors import InputError


def _shear(frames: torch.Tensor, strength: float, axis: int) -> torch.Tensor:
    shear = [0.0, 0.0]
    shear[axis] = math.degrees(math.atan(strength))
    return video_ops.affine(frames, shear=(shear[0], shear[1]))


def _translate(frames: torch.Tensor, strength: float, axis: int) -> torch.Tensor:
    """`strength` is a fraction of the width (axis 0) or height (axis 1)."""
    shift = [0.0, 0.0]
    shift[axis] = strength * frames.shape[-1 - axis]
    return video_ops.affine(frames, translate=(shift[0], shift[1]))


Operation = Callable[[torch.Tensor, float], torch.Tensor]

# name -> (operation(frames, strength), strength at the top magnitude, whether the sign is random)
OPERATIONS: dict[str, tuple[Operation, float, bool]] = {
    "identity": (lambda frames, _: frames, 0.0, False),
    "shear_x": (lambda frames, s: _shear(frames, s, 0), 0.3, True),
    "shear_y": (lambda frames, s: _shear(frames, s, 1), 0.3, True),
    "translate_x": (lambda frames, s: _translate(frames, s, 0), 150 / 331, True),
    "translate_y": (lambda frames, s: _translate(frames, s, 1), 150 / 331, True),
    "rotate": (lambda frames, s: video_ops.affine(frames, angle=s), 30.0, True),
    "brightness": (lambda frames, s: video_ops.adjust_brightness(frames, 1 + s), 0.9, True),
    "color": (lambda frames, s: video_ops.adjust_saturation(frames, 1 + s), 0.9, True),
    "contrast": (lambda frames, s: video_ops.adjust_contrast(frames, 1 + s), 0.9, True),
    "sharpness": (lambda frames, s: video_ops.adjust_sharpness(frames, 1 + s), 0.9, True),
    "posterize": (lambda frames, s: video_ops.posterize(frames, 8 - round(s)), 4.0, False),
    "solarize": (lambda frames, s: video_ops.solarize(frames, 255 - s), 255.0, False),
    "autocontrast": (lambda frames, _: video_ops.autocontrast(frames), 0.0, False),
    "equalize": (lambda frames, _: video_ops.equalize(frames), 0.0, False),
}


class RandAugment:
    """uint8 (T, C, H, W) -> uint8 (T, C, H, W)."""

    def __init__(
        self,
        *,
        num_ops: int = 2,
        magnitude: int = 9,
        num_magnitude_bins: int = 31,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0 <= magnitude < num_magnitude_bins:
            raise InputError(f"magnitude must be in 0..{num_magnitude_bins - 1}")
        self.num_ops = num_ops
        self.level = magnitude / (num_magnitude_bins - 1)
        self.generator = generator

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        names = list(OPERATIONS)
        for choice in torch.randint(len(names), (self.num_ops,), generator=self.generator):
            operation, top, signed = OPERATIONS[names[choice]]
            strength = top * self.level
            if signed and torch.rand(1, generator=self.generator).item() < 0.5:
                strength = -strength
            frames = operation(frames, strength)
        return frames
