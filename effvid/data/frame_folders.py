"""Reading clips from frame folders: one image file per frame (`img_00001.jpg`, `00001.png`, ...).

Frames are ordered by the number in their names (so `img_2` comes before `img_10`) and decoded with
PyAV's image decoders, only those a clip needs. A folder has no frame rate: timestamps use `fps`.
"""

import re
from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch

from effvid.data.decoding import (
    ClipReader,
    DecodedClip,
    VideoDecodeError,
    VideoInfo,
    frame_to_rgb,
)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def _frame_number(path: Path) -> tuple[int, str]:
    numbers = re.findall(r"\d+", path.stem)
    return (int(numbers[-1]) if numbers else -1, path.name)


def list_frame_files(folder: str | Path) -> list[Path]:
    """The image files of a frame folder in frame order."""
    files = [path for path in Path(folder).iterdir() if path.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=_frame_number)


class FrameFolderReader(ClipReader):
    """A frame folder with the interface of `VideoReader`: `info`, `read(frame_indices)`."""

    def __init__(self, folder: str | Path, *, fps: float = 30.0, short_side: int | None = None):
        self.path = str(folder)
        self.short_side = short_side
        try:
            self._files = list_frame_files(folder)
        except OSError as error:
            raise VideoDecodeError.from_exception(folder, error) from None
        if not self._files:
            raise VideoDecodeError(folder, "no image files in the frame folder")
        num_frames = len(self._files)
        width, height = self._decode(0).shape[1::-1]
        self.info = VideoInfo(num_frames, fps, num_frames / fps, width, height)

    def _decode(self, index: int) -> np.ndarray:
        path = self._files[index]
        try:
            with av.open(str(path)) as container:
                container.streams.video[0].codec_context.thread_count = 1  # see VideoReader
                frame = next(container.decode(video=0), None)
        except (av.FFmpegError, OSError) as error:
            raise VideoDecodeError.from_exception(path, error) from None
        if frame is None:
            raise VideoDecodeError(path, "no image")
        return frame_to_rgb(frame, self.short_side)

    def read(self, frame_indices: Sequence[int]) -> DecodedClip:
        """Decode the frames at `frame_indices`; indices past the end give the last frame."""
        indices = [min(index, self.info.num_frames - 1) for index in frame_indices]
        decoded = {index: self._decode(index) for index in set(indices)}
        frames = torch.from_numpy(np.stack([decoded[index] for index in indices]))
        return DecodedClip(frames, torch.tensor(indices, dtype=torch.float64) / self.info.fps)

    def count_decodable_frames(self) -> int:
        """Decode every image: a full health check."""
        for index in range(self.info.num_frames):
            self._decode(index)
        return self.info.num_frames
