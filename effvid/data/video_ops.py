"""Pure functions on uint8 video frames `(T, C, H, W)`, the same operation on every frame.

`T, C, H, W` is what `frames_first` makes of decoded `(T, H, W, C)` frames, without a copy (the
memory stays channels-last, the layout PyTorch's fast uint8 resize wants). Statistics that an image
op takes from one image (contrast mean, histogram, min/max) are taken from the whole clip here, so
that every frame gets the same mapping and the clip keeps its brightness over time.
"""

import math

import torch
import torch.nn.functional as F

_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def frames_first(frames: torch.Tensor) -> torch.Tensor:
    """(T, H, W, C) -> (T, C, H, W), a view."""
    return frames.permute(0, 3, 1, 2)


def resize(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear with antialiasing (uint8 in, uint8 out)."""
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bilinear", antialias=True)


def resize_short_side(frames: torch.Tensor, size: int) -> torch.Tensor:
    """Scale so that the shorter side is `size`, keeping the aspect ratio."""
    height, width = frames.shape[-2:]
    scale = size / min(height, width)
    return resize(frames, max(1, round(height * scale)), max(1, round(width * scale)))


def crop(frames: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    return frames[..., top : top + height, left : left + width]


def horizontal_flip(frames: torch.Tensor) -> torch.Tensor:
    return frames.flip(-1)


def _blend(frames: torch.Tensor, other: torch.Tensor | float, factor: float) -> torch.Tensor:
    """factor * frames + (1 - factor) * other, rounded back to uint8."""
    mixed = frames.float() * factor + other * (1.0 - factor)
    return mixed.round_().clamp_(0, 255).to(torch.uint8)


def grayscale(frames: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) -> float (T, 1, H, W) luma."""
    weights = torch.tensor(_GRAY_WEIGHTS).view(1, 3, 1, 1)
    return (frames.float() * weights).sum(1, keepdim=True)


def adjust_brightness(frames: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(frames, 0.0, factor)


def adjust_contrast(frames: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(frames, grayscale(frames).mean().item(), factor)


def adjust_saturation(frames: torch.Tensor, factor: float) -> torch.Tensor:
    return _blend(frames, grayscale(frames), factor)


def adjust_sharpness(frames: torch.Tensor, factor: float) -> torch.Tensor:
    """Blend with a smoothed copy (PIL's SMOOTH kernel; the border stays as it was)."""
    kernel = torch.ones(3, 3)
    kernel[1, 1] = 5.0
    kernel = (kernel / kernel.sum()).expand(frames.shape[1], 1, 3, 3)
    smooth = frames.float()
    smooth[..., 1:-1, 1:-1] = F.conv2d(frames.float(), kernel, groups=frames.shape[1])
    return _blend(frames, smooth, factor)


def posterize(frames: torch.Tensor, bits: int) -> torch.Tensor:
    return frames & (0xFF << (8 - bits)) & 0xFF


def solarize(frames: torch.Tensor, threshold: float) -> torch.Tensor:
    return torch.where(frames >= threshold, 255 - frames, frames)


def autocontrast(frames: torch.Tensor) -> torch.Tensor:
    """Stretch each channel to 0..255 (clip-wide minimum and maximum)."""
    low = frames.amin(dim=(0, 2, 3), keepdim=True).float()
    high = frames.amax(dim=(0, 2, 3), keepdim=True).float()
    scale = torch.where(high > low, 255.0 / (high - low), 1.0)
    low = torch.where(high > low, low, 0.0)
    return ((frames.float() - low) * scale).round_().clamp_(0, 255).to(torch.uint8)


def equalize(frames: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation of each channel, one histogram for the whole clip (PIL's rule)."""
    channels = []
    for channel in frames.unbind(1):
        histogram = torch.bincount(channel.flatten(), minlength=256)
        nonzero = histogram[histogram > 0]
        step = (nonzero.sum() - nonzero[-1]) // 255
        if step == 0:
            channels.append(channel)
            continue
        lut = ((torch.cumsum(histogram, 0) + step // 2) // step).clamp_(0, 255)
        lut = torch.cat([lut.new_zeros(1), lut[:-1]]).to(torch.uint8)
        channels.append(lut[channel.long()])
    return torch.stack(channels, 1)


def affine(
    frames: torch.Tensor,
    *,
    angle: float = 0.0,
    translate: tuple[float, float] = (0.0, 0.0),
    shear: tuple[float, float] = (0.0, 0.0),
    fill: int = 0,
) -> torch.Tensor:
    """Rotate by `angle` degrees (counter-clockwise), shear by `shear` degrees (x, y) about the
    centre, then translate by `translate` pixels (x, y); uncovered pixels get `fill`."""
    height, width = frames.shape[-2:]
    rotation, shear_x, shear_y = (math.radians(value) for value in (-angle, *shear))
    # Output -> input mapping in pixel units about the centre, then in affine_grid's [-1, 1] units.
    forward = torch.tensor(
        [
            [math.cos(rotation), -math.sin(rotation), translate[0]],
            [math.sin(rotation), math.cos(rotation), translate[1]],
            [0.0, 0.0, 1.0],
        ]
    ) @ torch.tensor(
        [[1.0, math.tan(shear_x), 0.0], [math.tan(shear_y), 1.0, 0.0], [0.0, 0.0, 1.0]]
    )
    inverse = torch.linalg.inv(forward)
    to_pixels = torch.diag(torch.tensor([width / 2, height / 2, 1.0]))
    theta = (torch.linalg.inv(to_pixels) @ inverse @ to_pixels)[:2]
    grid = F.affine_grid(theta.expand(frames.shape[0], 2, 3), list(frames.shape), False)
    shifted = frames.float() - fill
    warped = F.grid_sample(
        shifted, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return (warped + fill).round_().clamp_(0, 255).to(torch.uint8)
