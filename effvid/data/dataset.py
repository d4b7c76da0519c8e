"""`VideoDataset`: the clips of a `VideoList` as `(clip, label, meta)` items for a DataLoader.

    clip   float (C, T, H, W); a default collate makes (B, C, T, H, W)
    label  int (-1 for unlabelled videos)
    meta   {"video_id": str, "path": str, "video_index": int, "view": int, "temporal_view": int,
            "spatial_view": int, "frame_indices": int64 (T,), "timestamps": float64 (T,) seconds}

Training (`training=True`): one item per video, a random clip. Testing: one item per view, i.e.
`temporal_views` clips x `spatial_views` crops of every video, item `i` being view
`i % num_views` of video `i // num_views` (`view = temporal_view * spatial_views + spatial_view`);
`all_views(video_index)` gives them stacked.

An unreadable video (a `VideoDecodeError`) never ends an epoch: it is logged and listed by a
`BadVideoLog`, and the item is taken from the next readable video instead (same view, the same
choice in every run and worker). At test time the bad video thus has no item of its own; its
replacements carry their own `video_index`.
"""

from pathlib import Path

import torch
from torch.utils.data import Dataset

from effvid.data.annotations.records import VideoList, VideoRecord
from effvid.data.bad_videos import BadVideoLog
from effvid.data.decoding import VideoDecodeError
from effvid.data.frame_cache import FrameCache
from effvid.data.sampling import ClipSampler
from effvid.data.transforms import ClipTransform, crop_view, to_float_clip
from effvid.data.video_files import open_video
from effvid.errors import InputError


class VideoDataset(Dataset):
    """Clips of `videos` sampled by `sampler`, transformed by `transform` (uint8 (T, H, W, C) and
    label -> float (C, T, H, W) and label; default: scaled to [0, 1]).

    `crop_size` with `spatial_views` cuts test views out of the transformed clip (see `crop_view`);
    `decode_short_side` resizes frames while decoding (cheap; use it for large videos).
    `frame_cache` (a `FrameCache` of these videos, built with the same `decode_short_side`)
    serves the same frames without decoding.
    """

    def __init__(
        self,
        videos: VideoList,
        *,
        sampler: ClipSampler,
        transform: ClipTransform | None = None,
        training: bool = True,
        temporal_views: int = 1,
        spatial_views: int = 1,
        crop_size: int | None = None,
        decode_short_side: int | None = None,
        frame_folder_fps: float = 30.0,
        max_bad_fraction: float = 0.05,
        bad_video_report: str | Path | None = None,
        frame_cache: FrameCache | None = None,
    ) -> None:
        if training and temporal_views * spatial_views != 1:
            raise InputError("training draws one random clip per video: views are for testing")
        if spatial_views > 1 and crop_size is None:
            raise InputError("spatial views need a crop_size")
        if not videos.records:
            raise InputError(f"no videos found for {videos.source}")
        self.videos = videos
        self.classes = videos.classes
        self.sampler = sampler
        self.transform = transform or to_float_clip
        self.training = training
        self.temporal_views = temporal_views
        self.spatial_views = spatial_views
        self.crop_size = crop_size
        self.decode_short_side = decode_short_side
        self.frame_folder_fps = frame_folder_fps
        self.frame_cache = frame_cache
        self.bad_videos = BadVideoLog(
            num_videos=len(videos.records) + len(videos.missing),
            max_bad_fraction=max_bad_fraction,
            report_path=bad_video_report,
            missing=videos.missing,
            source=videos.source,
        )

    @property
    def num_views(self) -> int:
        return self.temporal_views * self.spatial_views

    def __len__(self) -> int:
        return len(self.videos.records) * self.num_views

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, dict]:
        video_index, view = divmod(index, self.num_views)
        num_videos = len(self.videos.records)
        for attempt in range(num_videos):
            candidate = (video_index + attempt) % num_videos
            record = self.videos.records[candidate]
            if str(record.path) in self.bad_videos.bad:
                continue
            try:
                return self._load(candidate, record, view)
            except VideoDecodeError as error:
                self.bad_videos.record(error)
        raise RuntimeError(f"no readable video in {self.videos.source}")

    def _load(self, video_index: int, record: VideoRecord, view: int) -> tuple:
        temporal_view, spatial_view = divmod(view, self.spatial_views)
        if self.frame_cache is not None and record.path in self.frame_cache:
            opened = self.frame_cache.reader(record.path)
        else:
            opened = open_video(
                record.path,
                short_side=self.decode_short_side,
                frame_folder_fps=self.frame_folder_fps,
            )
        with opened as video:
            indices = self.sampler.frame_indices(
                video.info.num_frames,
                view=None if self.training else temporal_view,
                num_views=self.temporal_views,
            )
            decoded = video.read(indices)
        clip, label = self.transform(decoded.frames, record.label)
        if self.crop_size is not None:
            clip = crop_view(clip, self.crop_size, spatial_view, self.spatial_views)
        meta = {
            "video_id": record.video_id,
            "path": str(record.path),
            "video_index": video_index,
            "view": view,
            "temporal_view": temporal_view,
            "spatial_view": spatial_view,
            "frame_indices": torch.tensor(indices),
            "timestamps": decoded.timestamps,
        }
        return clip, label, meta

    def all_views(self, video_index: int) -> tuple[torch.Tensor, int, list[dict]]:
        """Every test view of one video: clips (V, C, T, H, W), its label, one meta per view."""
        items = [self[video_index * self.num_views + view] for view in range(self.num_views)]
        clips, labels, metas = zip(*items, strict=True)
        return torch.stack(clips), labels[0], list(metas)
