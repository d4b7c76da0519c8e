"""Small real videos for the data tests: every frame carries its own index as bright blocks.

The index is written in binary along the top row, one 8x8 block per bit (most significant first),
white for 1 and black for 0, which survives lossy encoding (frames >= 80 px wide, indices < 1024).
The grey of the rest of the frame changes with the index too. A white 8x8 marker sits in the
bottom-left corner, to check rotation.
"""

from pathlib import Path
from typing import Any

import numpy as np
import torch

from effvid.data import write_video

BITS = 10
BLOCK = 8


def indexed_frame(index: int, height: int = 48, width: int = 80) -> np.ndarray:
    """uint8 (H, W, 3) showing `index`."""
    frame = np.full((height, width, 3), 64 + index * 7 % 128, dtype=np.uint8)
    for bit in range(BITS):
        on = (index >> (BITS - 1 - bit)) & 1
        frame[:BLOCK, bit * BLOCK : (bit + 1) * BLOCK] = 255 if on else 0
    frame[-BLOCK:, :BLOCK] = 255
    return frame


def frame_index(frame: torch.Tensor | np.ndarray) -> int:
    """The index shown by an (H, W, 3) or (3, H, W) frame (uint8 or float in [0, 1])."""
    frame = torch.as_tensor(frame).float()
    if frame.shape[0] == 3:
        frame = frame.permute(1, 2, 0)
    if frame.max() <= 1.0:
        frame = frame * 255
    gray = frame.mean(-1)
    centre = slice(2, BLOCK - 2)
    bits = [
        gray[centre, bit * BLOCK + 2 : (bit + 1) * BLOCK - 2].mean() > 128 for bit in range(BITS)
    ]
    return int("".join("1" if bit else "0" for bit in bits), 2)


def clip_indices(frames: torch.Tensor) -> list[int]:
    """Frame indices of uint8 (T, H, W, 3) frames or a float clip (3, T, H, W)."""
    if frames.dtype == torch.uint8:
        return [frame_index(frame) for frame in frames]
    return [frame_index(frames[:, t]) for t in range(frames.shape[1])]


def write_indexed_video(
    path: Path, num_frames: int, *, height: int = 48, width: int = 80, **encoding: Any
) -> Path:
    """Frames 0 .. num_frames - 1 encoded by `write_video` (`encoding`: its keyword arguments)."""
    write_video(path, (indexed_frame(i, height, width) for i in range(num_frames)), **encoding)
    return path
