"""Decoding the frames a clip needs from an encoded video file (PyAV, which bundles FFmpeg).

Frame index i means the picture shown at time `start + i / fps`, with `fps` the stream's average
rate: for a constant-rate video that is exactly the i-th frame, for a variable-rate video it samples
time evenly, which is what a clip of "8 frames, 8 apart" means. `VideoReader.read` seeks to the
keyframe before the first wanted frame, decodes forward and stops after the last one; it seeks again
only when the next wanted frame is more than `SEEK_AHEAD_S` ahead (seeking on every frame is slower:
each seek re-decodes from a keyframe). Frames come back as shown by a player: rotation metadata
applied, any pixel format (yuv420p, yuv444p, gray, ...) converted to RGB.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch

from effvid.errors import EffvidError

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".flv", ".ogv", ".3gp"}
)
SEEK_AHEAD_S = 1.0


class VideoDecodeError(EffvidError):
    """A video cannot be read: the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"cannot decode '{path}' ({reason})")
        self.path = str(path)
        self.reason = reason

    @classmethod
    def from_exception(cls, path: str | Path, error: Exception) -> "VideoDecodeError":
        """FFmpeg's or the OS's own words, without the file name they repeat."""
        return cls(path, getattr(error, "strerror", None) or str(error) or type(error).__name__)


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds, from its headers. `num_frames` counts frames at the average rate (exact
    for constant-rate mp4/avi, an estimate from the duration for webm/mkv, which store no count);
    `width` and `height` are the stored size, before any rotation."""

    num_frames: int
    fps: float
    duration: float
    width: int
    height: int


@dataclass(frozen=True)
class DecodedClip:
    """frames: uint8 (T, H, W, 3) RGB; timestamps: float64 (T,), seconds from the video's start."""

    frames: torch.Tensor
    timestamps: torch.Tensor


class ClipReader:
    """What every reader offers: `path`, `info`, `read(frame_indices)`, `count_decodable_frames()`,
    and `close()`, also as a context manager."""

    path: str
    info: VideoInfo

    def __enter__(self) -> "ClipReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file; readers that keep nothing open do nothing."""

    def read(self, frame_indices: Sequence[int]) -> DecodedClip:
        raise NotImplementedError

    def count_decodable_frames(self) -> int:
        raise NotImplementedError


class VideoReader(ClipReader):
    """An open video file: `info`, then `read(frame_indices)` any number of times.

    `short_side` resizes frames while converting them to RGB (FFmpeg's swscale, area filter), which
    is much cheaper than decoding full size and resizing tensors afterwards.
    """

    def __init__(self, path: str | Path, *, short_side: int | None = None) -> None:
        self.path = str(path)
        self.short_side = short_side
        self.decoded_frames = 0  # by `read`, to check what sampling costs
        try:
            self._container = av.open(self.path)
        except (av.FFmpegError, OSError) as error:
            raise VideoDecodeError.from_exception(path, error) from None
        try:
            if not self._container.streams.video:
                raise VideoDecodeError(path, "no video stream")
            self._stream = self._container.streams.video[0]
            # One decoding thread: DataLoader workers are the parallelism, and FFmpeg's thread
            # pools outlive `close()` until garbage collection, which deadlocks a forked child.
            self._stream.codec_context.thread_count = 1
            self.info = self._probe()
        except VideoDecodeError:
            self._container.close()
            raise

    def close(self) -> None:
        self._container.close()

    def _probe(self) -> VideoInfo:
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise VideoDecodeError(self.path, "no frame rate")
        fps = float(rate)
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / av.time_base
        else:
            duration = 0.0
        num_frames = stream.frames or round(duration * fps)
        if num_frames <= 0:
            raise VideoDecodeError(self.path, "no frame count or duration in the headers")
        codec = stream.codec_context
        return VideoInfo(num_frames, fps, duration or num_frames / fps, codec.width, codec.height)

    def read(self, frame_indices: Sequence[int]) -> DecodedClip:
        """Decode the frames at `frame_indices` (any order, repeats allowed, all >= 0).

        Indices past `info.num_frames` give the last frame. Raises VideoDecodeError when the file is
        corrupt or its stream ends well before a wanted frame (a truncated file).
        """
        last_index = self.info.num_frames - 1
        frame_indices = [min(index, last_index) for index in frame_indices]
        stream = self._stream
        time_base = float(stream.time_base)
        start_pts = stream.start_time or 0
        interval_pts = 1 / (self.info.fps * time_base)
        wanted = sorted(set(frame_indices))
        targets = {index: start_pts + round(index * interval_pts) for index in wanted}
        # The first frame at or after a target, allowing half a frame of timestamp rounding.
        tolerance = interval_pts / 2
        seek_ahead = SEEK_AHEAD_S / time_base

        pictures: dict[int, tuple[np.ndarray, float]] = {}
        frames = None
        current = None
        try:
            for index in wanted:
                target = targets[index]
                if frames is None or target - _pts(current) > seek_ahead:
                    frames = self._seek(target, tolerance)
                    current = next(frames, None)
                while current is not None and _pts(current) < target - tolerance:
                    following = next(frames, None)
                    if following is None:
                        break
                    current = following
                if current is None:
                    raise VideoDecodeError(self.path, "no decodable frame")
                end = _pts(current) + (current.duration or 0) + 2 * interval_pts
                if target > end:
                    shown = (_pts(current) - start_pts) * time_base
                    raise VideoDecodeError(
                        self.path, f"stream ends at {shown:.2f} s, frame {index} is later"
                    )
                seconds = (_pts(current) - start_pts) * time_base
                pictures[index] = (frame_to_rgb(current, self.short_side), seconds)
        except av.FFmpegError as error:
            raise VideoDecodeError.from_exception(self.path, error) from None
        pixels, times = zip(*(pictures[index] for index in frame_indices), strict=True)
        return DecodedClip(
            torch.from_numpy(np.stack(pixels)), torch.tensor(times, dtype=torch.float64)
        )

    def _seek(self, target: int, tolerance: float):
        """Decoded frames from the keyframe at or before `target` on (a generator)."""
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        frames = self._container.decode(self._stream)
        first = next(frames, None)
        if first is not None and _pts(first) > target + tolerance:
            # The container's index sent us past the target: start over from the beginning.
            self._container.seek(self._stream.start_time or 0, stream=self._stream, backward=True)
            frames = self._container.decode(self._stream)
            first = next(frames, None)
        if first is not None:
            self.decoded_frames += 1
            yield first
            for frame in frames:
                self.decoded_frames += 1
                yield frame

    def count_decodable_frames(self) -> int:
        """Decode the whole stream (no RGB conversion) and count its frames: a full health check."""
        try:
            return sum(1 for _ in self._container.decode(self._stream))
        except av.FFmpegError as error:
            raise VideoDecodeError.from_exception(self.path, error) from None


def frame_to_rgb(frame: av.VideoFrame, short_side: int | None = None) -> np.ndarray:
    """uint8 (H, W, 3): rotated as the display matrix says, scaled to `short_side` if given."""
    if short_side is None:
        rgb = frame.to_ndarray(format="rgb24")
    else:
        scale = short_side / min(frame.width, frame.height)
        width = max(1, round(frame.width * scale))
        height = max(1, round(frame.height * scale))
        rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA")
    quarter_turns = round(frame.rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, quarter_turns)) if quarter_turns else rgb


def _pts(frame: av.VideoFrame) -> int:
    return frame.pts if frame.pts is not None else frame.dts
