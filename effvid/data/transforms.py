"""Clip transforms: decoded uint8 frames `(T, H, W, C)` and a label -> float clip `(C, T, H, W)`
and a label.

Every random parameter (crop box, scale, flip, colour factors, RandAugment operations) is drawn once
per clip and applied to every frame. Frames stay uint8 until `normalize`, the last step. The label
goes through the transform because a horizontal flip changes the label of a direction-sensitive
class ("moving left" becomes "moving right"): give `flip_label_map`, or `flip=False` for datasets
such as Something-Something V2 where no map can fix it.

Spatial test views (three crops, ten crops) are cut by the dataset from the clip that
`EvalTransform` returns, with `crop_view`.
"""

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from effvid.data import video_ops
from effvid.data.randaugment import RandAugment
from effvid.errors import InputError

ClipTransform = Callable[[torch.Tensor, int], tuple[torch.Tensor, int]]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(frames: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (T, C, H, W) -> float (C, T, H, W), (frames / 255 - mean) / std per channel."""
    scale = torch.tensor([1 / (255 * s) for s in std]).view(-1, 1, 1, 1)
    shift = torch.tensor([m / s for m, s in zip(mean, std, strict=True)]).view(-1, 1, 1, 1)
    clip = frames.transpose(0, 1).to(torch.float32, memory_format=torch.contiguous_format)
    return clip.mul_(scale).sub_(shift)


def to_float_clip(frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
    """The plainest transform: uint8 (T, H, W, C) -> float (C, T, H, W) in [0, 1]."""
    return normalize(video_ops.frames_first(frames), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), label


def crop_view(clip: torch.Tensor, size: int, view: int, num_views: int) -> torch.Tensor:
    """Spatial test view `view` of `num_views`, a `size` square of clip (..., H, W).

    1 view: the centre. 3 views: start, centre and end of the longer side (left/centre/right or
    top/centre/bottom). 10 views: centre and four corners, then the same five flipped (only for
    classes that a mirror image does not change).
    """
    height, width = clip.shape[-2:]
    if size > min(height, width):
        raise InputError(f"crop size {size} is larger than the clip ({height}x{width})")
    centre = ((height - size) // 2, (width - size) // 2)
    if num_views == 1:
        top, left = centre
    elif num_views == 3:
        along = [0, (max(height, width) - size) // 2, max(height, width) - size][view]
        top, left = (along, centre[1]) if height > width else (centre[0], along)
    elif num_views == 10:
        corners = [centre, (0, 0), (0, width - size), (height - size, 0)]
        top, left = [*corners, (height - size, width - size)][view % 5]
    else:
        raise InputError(f"spatial views must be 1, 3 or 10, not {num_views}")
    cropped = video_ops.crop(clip, top, left, size, size)
    return video_ops.horizontal_flip(cropped) if view >= 5 else cropped


class ColorJitter:
    """Random brightness, contrast and saturation factors in [1 - x, 1 + x], one draw per clip,
    applied with probability `p`. uint8 (T, C, H, W) -> uint8 (T, C, H, W). (No hue jitter.)"""

    def __init__(
        self,
        *,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        p: float = 0.8,
        generator: torch.Generator | None = None,
    ) -> None:
        self.steps = (
            (video_ops.adjust_brightness, brightness),
            (video_ops.adjust_contrast, contrast),
            (video_ops.adjust_saturation, saturation),
        )
        self.p = p
        self.generator = generator

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        draws = torch.rand(1 + len(self.steps), generator=self.generator).tolist()
        if draws[0] >= self.p:
            return frames
        for (adjust, amount), draw in zip(self.steps, draws[1:], strict=True):
            if amount:
                frames = adjust(frames, 1.0 + amount * (2 * draw - 1))
        return frames


def random_resized_crop_box(
    height: int,
    width: int,
    area: tuple[float, float],
    aspect_ratio: tuple[float, float],
    generator: torch.Generator | None = None,
) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random box with an area fraction in `area` and a
    width/height ratio in `aspect_ratio` (log-uniform); the centre square after 10 misses."""
    log_ratio = (math.log(aspect_ratio[0]), math.log(aspect_ratio[1]))
    for _ in range(10):
        draws = torch.rand(4, generator=generator).tolist()
        target_area = height * width * (area[0] + (area[1] - area[0]) * draws[0])
        ratio = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * draws[1])
        box_width = round(math.sqrt(target_area * ratio))
        box_height = round(math.sqrt(target_area / ratio))
        if 0 < box_width <= width and 0 < box_height <= height:
            top = int(draws[2] * (height - box_height + 1))
            left = int(draws[3] * (width - box_width + 1))
            return top, left, box_height, box_width
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


class TrainTransform:
    """Training augmentation: uint8 (T, H, W, C), label -> float (C, T, size, size), label.

    Spatial step, one of two conventions: with `scale_jitter=(a, b)`, scale the short side to a
    random size in [a, b] and cut a random `crop_size` square (SlowFast, X3D); otherwise a random
    resized crop with an area fraction in `area` and a width/height ratio in `aspect_ratio`
    (Inception, TSN, MViT). Then a horizontal flip with probability 0.5 (if `flip`; labels mapped
    by `flip_label_map`), optional `color_jitter` and `randaugment`, and `normalize`.
    """

    def __init__(
        self,
        *,
        crop_size: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        scale_jitter: tuple[int, int] | None = None,
        area: tuple[float, float] = (0.08, 1.0),
        aspect_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip: bool = True,
        flip_label_map: Mapping[int, int] | None = None,
        color_jitter: ColorJitter | None = None,
        randaugment: RandAugment | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.crop_size = crop_size
        self.mean, self.std = tuple(mean), tuple(std)
        self.scale_jitter = scale_jitter
        self.area, self.aspect_ratio = area, aspect_ratio
        self.flip = flip
        self.flip_label_map = dict(flip_label_map or {})
        self.color_jitter = color_jitter
        self.randaugment = randaugment
        self.generator = generator

    def _random_crop(self, frames: torch.Tensor) -> torch.Tensor:
        size = self.crop_size
        if self.scale_jitter is not None:
            low, high = self.scale_jitter
            short_side = low + int(torch.randint(high - low + 1, (1,), generator=self.generator))
            frames = video_ops.resize_short_side(frames, max(short_side, size))
            height, width = frames.shape[-2:]
            top, left = (
                int(torch.randint(extent - size + 1, (1,), generator=self.generator))
                for extent in (height, width)
            )
            return video_ops.crop(frames, top, left, size, size)
        height, width = frames.shape[-2:]
        top, left, box_height, box_width = random_resized_crop_box(
            height, width, self.area, self.aspect_ratio, self.generator
        )
        return video_ops.resize(
            video_ops.crop(frames, top, left, box_height, box_width), size, size
        )

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        frames = self._random_crop(video_ops.frames_first(frames))
        if self.flip and torch.rand(1, generator=self.generator).item() < 0.5:
            frames = video_ops.horizontal_flip(frames)
            label = self.flip_label_map.get(label, label)
        if self.color_jitter is not None:
            frames = self.color_jitter(frames)
        if self.randaugment is not None:
            frames = self.randaugment(frames)
        return normalize(frames, self.mean, self.std), label


class EvalTransform:
    """Test preprocessing: uint8 (T, H, W, C), label -> float (C, T, H', W'), label, the short side
    scaled to `short_side` (the dataset then cuts its spatial views with `crop_view`)."""

    def __init__(
        self,
        *,
        short_side: int,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.short_side = short_side
        self.mean, self.std = tuple(mean), tuple(std)

    def __call__(self, frames: torch.Tensor, label: int) -> tuple[torch.Tensor, int]:
        frames = video_ops.resize_short_side(video_ops.frames_first(frames), self.short_side)
        return normalize(frames, self.mean, self.std), label
