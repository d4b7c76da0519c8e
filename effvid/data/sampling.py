"""Which frames of a video make a clip: dense sampling and segment (TSN-style) sampling.

A sampler maps a video length to `clip_length` frame indices. Training (`view=None`) draws a random
clip; test view `k` of `num_views` is deterministic, and different views take different frames:
dense clips start at the centres of `num_views` equal parts of the possible start range, segment
views take the points `(k + 0.5) / num_views` of the way through every segment (never all the
segment centres, which would make every view the same clip).
"""

from typing import Literal

import torch

from effvid.errors import InputError


class ClipSampler:
    """The interface: `clip_length` and `frame_indices`; subclasses define the two clip kinds."""

    clip_length: int

    def frame_indices(
        self,
        num_video_frames: int,
        *,
        view: int | None = None,
        num_views: int = 1,
        generator: torch.Generator | None = None,
    ) -> list[int]:
        """`clip_length` indices in [0, num_video_frames): a random training clip when `view`
        is None, else test view `view` of `num_views`."""
        if view is None:
            return self._training_clip(num_video_frames, generator)
        return self._test_clip(num_video_frames, (view + 0.5) / num_views)

    def _training_clip(self, num_video_frames: int, generator: torch.Generator | None) -> list[int]:
        raise NotImplementedError

    def _test_clip(self, num_video_frames: int, position: float) -> list[int]:
        """The clip at `position` in (0, 1): the centre of this view's share of the video."""
        raise NotImplementedError


class DenseSampler(ClipSampler):
    """`num_frames` frames, `sampling_rate` apart (the SlowFast/X3D/VMF convention).

    A video shorter than the clip's span is handled by `short_video`: "pad" repeats the last frame
    (training clips then all start at frame 0), "loop" wraps around to the first frame and lets
    clips start anywhere.
    """

    def __init__(
        self,
        *,
        num_frames: int,
        sampling_rate: int = 1,
        short_video: Literal["pad", "loop"] = "pad",
    ) -> None:
        if num_frames < 1 or sampling_rate < 1:
            raise InputError("num_frames and sampling_rate must be >= 1")
        if short_video not in ("pad", "loop"):
            raise InputError(f"short_video must be 'pad' or 'loop', not {short_video!r}")
        self.num_frames = self.clip_length = num_frames
        self.sampling_rate = sampling_rate
        self.short_video = short_video

    def _last_start(self, num_video_frames: int) -> int:
        span = (self.num_frames - 1) * self.sampling_rate + 1
        if num_video_frames >= span:
            return num_video_frames - span
        return num_video_frames - 1 if self.short_video == "loop" else 0

    def _clip_from(self, start: int, num_video_frames: int) -> list[int]:
        indices = range(start, start + self.num_frames * self.sampling_rate, self.sampling_rate)
        if self.short_video == "loop":
            return [index % num_video_frames for index in indices]
        return [min(index, num_video_frames - 1) for index in indices]

    def _training_clip(self, num_video_frames: int, generator: torch.Generator | None) -> list[int]:
        last_start = self._last_start(num_video_frames)
        start = int(torch.randint(last_start + 1, (1,), generator=generator))
        return self._clip_from(start, num_video_frames)

    def _test_clip(self, num_video_frames: int, position: float) -> list[int]:
        start = round(position * self._last_start(num_video_frames))
        return self._clip_from(start, num_video_frames)


class SegmentSampler(ClipSampler):
    """One frame from each of `num_segments` equal parts of the whole video (TSN, TSM, SSv2).

    Training takes a random frame inside each segment, test view k the frame `(k + 0.5) / num_views`
    of the way through it (the centre for one view). A video with fewer frames than segments
    repeats frames.
    """

    def __init__(self, *, num_segments: int) -> None:
        if num_segments < 1:
            raise InputError("num_segments must be >= 1")
        self.num_segments = self.clip_length = num_segments

    def _frames_at(self, num_video_frames: int, offsets: list[float]) -> list[int]:
        segment_length = num_video_frames / self.num_segments
        return [
            min(int((segment + offset) * segment_length), num_video_frames - 1)
            for segment, offset in enumerate(offsets)
        ]

    def _training_clip(self, num_video_frames: int, generator: torch.Generator | None) -> list[int]:
        offsets = torch.rand(self.num_segments, generator=generator).tolist()
        return self._frames_at(num_video_frames, offsets)

    def _test_clip(self, num_video_frames: int, position: float) -> list[int]:
        return self._frames_at(num_video_frames, [position] * self.num_segments)
