"""How a model's clips are made from a video, and the one place that turns that into a sampler and
transforms: every caller (training and evaluation datasets, `effvid predict`, `effvid explain`,
export's check on real videos) builds its clips here, so they all read the same frames.

A model card gives the default `Preprocessing`; a trained checkpoint records the one it was
trained with (`Preprocessing.as_dict`), and `Preprocessing.resolve` picks that one when present.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from effvid.data.decoding import VideoInfo
from effvid.data.sampling import ClipSampler, DenseSampler, SegmentSampler
from effvid.data.transforms import EvalTransform, crop_view
from effvid.errors import InputError

SAMPLINGS = ("dense", "segment")


class _CardLike(Protocol):
    """The fields of a model card a default preprocessing is made from (`effvid.ModelCard`)."""

    num_frames: int
    sampling_rate: int | None
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class Preprocessing:
    """How clips are made for a model: `num_frames` frames every `sampling_rate` frames (dense)
    or one per segment ('segment'), short side resized to `short_side`, `crop_size` square crop,
    normalised by mean/std (RGB in [0, 1])."""

    num_frames: int
    sampling_rate: int
    crop_size: int
    short_side: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    sampling: str = "dense"

    @classmethod
    def from_card(cls, card: _CardLike) -> "Preprocessing":
        """The input a registered model is made for: dense clips, short side = crop."""
        return cls(
            num_frames=card.num_frames,
            sampling_rate=card.sampling_rate or 1,
            crop_size=card.input_size,
            short_side=card.input_size,
            mean=tuple(card.mean),
            std=tuple(card.std),
        )

    @classmethod
    def from_dict(cls, values: Mapping) -> "Preprocessing":
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        known["mean"], known["std"] = tuple(known["mean"]), tuple(known["std"])
        return cls(**known)

    @classmethod
    def resolve(cls, stored: Mapping | None, card: _CardLike) -> "Preprocessing":
        """A checkpoint's recorded preprocessing if it has one, else the model card's."""
        return cls.from_dict(stored) if stored else cls.from_card(card)

    def as_dict(self) -> dict:
        return {**self.__dict__, "mean": list(self.mean), "std": list(self.std)}

    def sampler(self) -> ClipSampler:
        """Which frames make a clip: `num_frames` dense frames `sampling_rate` apart, or one
        per segment of the whole video."""
        if self.sampling == "segment":
            return SegmentSampler(num_segments=self.num_frames)
        if self.sampling != "dense":
            raise InputError(
                f"sampling must be one of {', '.join(SAMPLINGS)}, not {self.sampling!r}"
            )
        return DenseSampler(num_frames=self.num_frames, sampling_rate=self.sampling_rate)

    def eval_transform(self) -> EvalTransform:
        """Short side resized to `short_side`, normalised (views are cut by `crop_view`)."""
        return EvalTransform(short_side=self.short_side, mean=self.mean, std=self.std)


class EvalClips:
    """Test clips of open videos exactly as `preprocessing` says: the sampler's test view, the
    frames resized and normalised, then a spatial crop view.

    `clip(reader, view, num_views)` -> float (3, T, crop, crop); the datasets of evaluation
    use the same `sampler`, `transform` and `crop_size`.
    """

    def __init__(self, preprocessing: Preprocessing) -> None:
        self.preprocessing = preprocessing
        self.sampler = preprocessing.sampler()
        self.transform = preprocessing.eval_transform()
        self.crop_size = preprocessing.crop_size

    def frame_indices(self, num_video_frames: int, view: int = 0, num_views: int = 1) -> list[int]:
        return list(self.sampler.frame_indices(num_video_frames, view=view, num_views=num_views))

    def read(
        self, reader, indices: Sequence[int], crop: int = 0, num_crops: int = 1
    ) -> torch.Tensor:
        """These frames of an open video as a model input (3, T, crop_size, crop_size)."""
        clip, _ = self.transform(reader.read(indices).frames, -1)
        return crop_view(clip, self.crop_size, crop, num_crops)

    def clip(self, reader, view: int = 0, num_views: int = 1) -> torch.Tensor:
        """Temporal test view `view` of `num_views` of an open video, centre crop."""
        return self.read(reader, self.frame_indices(reader.info.num_frames, view, num_views))

    def plan(
        self,
        info: VideoInfo,
        *,
        clips: int | None = None,
        window: float | None = None,
        stride: float | None = None,
    ) -> "ClipPlan":
        """Which clips of a video to read: the whole video as `clips` test views spread over it,
        or a timeline, one clip in the middle of each `window` seconds, every `stride` seconds."""
        fps = info.fps or 30.0
        total = info.num_frames
        if window is None:
            count = clips or 1
            indices = [self.frame_indices(total, view, count) for view in range(count)]
            spans = [(min(clip) / fps, (max(clip) + 1) / fps) for clip in indices]
            return ClipPlan(indices, spans)
        length = min(total, max(1, round(window * fps)))
        starts = range(0, total - length + 1, max(1, round((stride or window) * fps)))
        centre = self.frame_indices(length)
        indices = [[start + i for i in centre] for start in starts]
        return ClipPlan(indices, [(start / fps, (start + length) / fps) for start in starts])

    def read_many(self, reader, plan: "ClipPlan") -> torch.Tensor:
        """Every clip of `plan` from an open video, each frame decoded and transformed once:
        (len(plan), 3, T, crop_size, crop_size)."""
        wanted = sorted({index for clip in plan.indices for index in clip})
        frames, _ = self.transform(reader.read(wanted).frames, -1)  # (3, N, H, W)
        position = {index: place for place, index in enumerate(wanted)}
        clips = [frames[:, [position[i] for i in clip]] for clip in plan.indices]
        return torch.stack([crop_view(clip, self.crop_size, 0, 1) for clip in clips])


@dataclass(frozen=True)
class ClipPlan:
    """The clips to read from one video: their frame indices and their spans in seconds."""

    indices: list[list[int]]
    spans: list[tuple[float, float]]

    def __len__(self) -> int:
        return len(self.indices)
