"""Probes of what a video model takes from the order of its frames (`effvid eval --time-order`).

This module imports torch only when a clip is reordered: the command lists the orders in its
help without loading torch.
"""

from typing import TYPE_CHECKING

from effvid.errors import InputError

if TYPE_CHECKING:
    import torch

TIME_ORDERS = ("forward", "reversed", "shuffled", "single")


def reorder_time(clips: "torch.Tensor", order: str, generator: "torch.Generator") -> "torch.Tensor":
    """clips (B, C, T, H, W) -> the same shape: 'reversed' plays each clip backwards,
    'shuffled' puts its frames in a random order (one per clip, from `generator`), 'single'
    repeats its middle frame T times; 'forward' leaves it."""
    import torch

    if order == "reversed":
        return clips.flip(dims=(2,))
    if order == "shuffled":
        frames = clips.shape[2]
        orders = [torch.randperm(frames, generator=generator) for _ in range(clips.shape[0])]
        return torch.stack([clip[:, index] for clip, index in zip(clips, orders, strict=True)])
    if order == "single":
        middle = clips[:, :, clips.shape[2] // 2 : clips.shape[2] // 2 + 1]
        return middle.expand_as(clips).contiguous()
    if order != "forward":
        raise InputError(f"time order must be one of {', '.join(TIME_ORDERS)}, got {order!r}")
    return clips
