"""`VideoDataset` end to end: annotation files and real videos in, DataLoader batches out."""

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from effvid.data import (
    DenseSampler,
    EvalTransform,
    SegmentSampler,
    TooManyBadVideos,
    TrainTransform,
    VideoDataset,
    read_bad_video_report,
    read_list_file,
    read_ssv2,
)
from tests.data.videos import clip_indices, write_indexed_video


def _list_dataset(root: Path, num_videos: int, num_frames: int, broken: set[int] = frozenset()):
    """`num_videos` indexed mp4s of `num_frames` frames, the ones in `broken` garbage, listed."""
    lines = []
    for index in range(num_videos):
        path = root / f"v{index:02d}.mp4"
        if index in broken:
            path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
        else:
            write_indexed_video(path, num_frames)
        lines.append(f"{path.name} {index % 3}\n")
    (root / "list.txt").write_text("".join(lines))
    return read_list_file(root / "list.txt", classes=["a", "b", "c"])


def test_training_batches_are_bcthw_with_meta(tmp_path):
    videos = _list_dataset(tmp_path, 4, 30)
    dataset = VideoDataset(
        videos,
        sampler=DenseSampler(num_frames=8, sampling_rate=2),
        transform=TrainTransform(crop_size=32),
    )
    assert dataset.classes == ["a", "b", "c"] and len(dataset) == 4
    clips, labels, meta = next(iter(DataLoader(dataset, batch_size=4)))
    assert clips.shape == (4, 3, 8, 32, 32) and clips.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2, 0]
    assert meta["video_id"] == ["v00.mp4", "v01.mp4", "v02.mp4", "v03.mp4"]
    assert meta["frame_indices"].shape == (4, 8)
    steps = meta["frame_indices"].diff(dim=1)
    assert torch.all(steps == 2)
    assert torch.allclose(meta["timestamps"], meta["frame_indices"].double() / 30, atol=1e-3)


def test_default_transform_keeps_the_decoded_frames(tmp_path):
    videos = _list_dataset(tmp_path, 1, 20)
    dataset = VideoDataset(videos, sampler=DenseSampler(num_frames=5, sampling_rate=3))
    clip, _, meta = dataset[0]
    assert clip.shape == (3, 5, 48, 80) and clip.min() >= 0 and clip.max() <= 1
    assert clip_indices(clip) == meta["frame_indices"].tolist()


def _write_ssv2_validation(root: Path, num_videos: int, num_frames: int) -> Path:
    labels = {
        "Pushing something from left to right": "0",
        "Pushing something from right to left": "1",
    }
    (root / "labels.json").write_text(json.dumps(labels))
    entries = []
    for index in range(num_videos):
        write_indexed_video(root / f"{100 + index}.webm", num_frames, codec="libvpx-vp9")
        direction = "left to right" if index % 2 == 0 else "right to left"
        entries.append(
            {
                "id": str(100 + index),
                "label": f"pushing a box from {direction}",
                "template": f"Pushing [something] from {direction}",
                "placeholders": ["a box"],
            }
        )
    (root / "validation.json").write_text(json.dumps(entries, indent=2))
    return root / "validation.json"


def test_ssv2_test_views_are_distinct_frames_and_crops(tmp_path):
    videos = read_ssv2(_write_ssv2_validation(tmp_path, 2, 36))
    sampler = SegmentSampler(num_segments=4)
    temporal = VideoDataset(videos, sampler=sampler, training=False, temporal_views=3)
    assert len(temporal) == 6
    clips, label, metas = temporal.all_views(1)
    assert label == 1 and [m["view"] for m in metas] == [0, 1, 2]
    decoded = [clip_indices(clip) for clip in clips]  # what is really in the pixels
    assert decoded == [m["frame_indices"].tolist() for m in metas]
    assert decoded == [[1, 10, 19, 28], [4, 13, 22, 31], [7, 16, 25, 34]]
    for segment in range(4):
        assert len({frames[segment] for frames in decoded}) == 3

    views = VideoDataset(
        videos,
        sampler=sampler,
        transform=EvalTransform(short_side=48),
        training=False,
        temporal_views=3,
        spatial_views=3,
        crop_size=48,
    )
    clips, _, metas = views.all_views(0)
    assert clips.shape == (9, 3, 4, 48, 48)
    assert [(m["temporal_view"], m["spatial_view"]) for m in metas][:4] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
    ]
    flat = clips.flatten(1)
    for first in range(9):
        for second in range(first + 1, 9):
            assert not torch.allclose(flat[first], flat[second]), (first, second)


def test_training_views_are_refused(tmp_path):
    videos = _list_dataset(tmp_path, 1, 8)
    with pytest.raises(ValueError, match="views are for testing"):
        VideoDataset(videos, sampler=DenseSampler(num_frames=4), temporal_views=2)


def test_one_unreadable_video_in_50_does_not_stop_an_epoch(tmp_path, caplog):
    videos = _list_dataset(tmp_path, 50, 6, broken={17})
    report = tmp_path / "bad_videos.tsv"
    dataset = VideoDataset(
        videos,
        sampler=DenseSampler(num_frames=4),
        transform=TrainTransform(crop_size=32, area=(0.5, 1.0)),
        bad_video_report=report,
    )
    loader = DataLoader(dataset, batch_size=5, num_workers=2, shuffle=False)
    seen = []
    for clips, _, meta in loader:
        assert clips.shape == (5, 3, 4, 32, 32)
        seen += meta["video_index"].tolist()
    assert len(seen) == 50
    assert 17 not in seen and seen.count(18) == 2  # replaced by the next video, deterministically
    listed = read_bad_video_report(report)
    assert list(listed) == [str(tmp_path / "v17.mp4")]
    assert "Invalid data" in listed[str(tmp_path / "v17.mp4")]


def test_too_many_unreadable_videos_abort_with_a_clear_message(tmp_path, caplog):
    videos = _list_dataset(tmp_path, 10, 6, broken={2, 5})
    dataset = VideoDataset(
        videos,
        sampler=DenseSampler(num_frames=4),
        max_bad_fraction=0.1,
        bad_video_report=tmp_path / "bad.tsv",
    )
    with caplog.at_level("WARNING", logger="effvid.data"):
        assert dataset[2][2]["video_index"] == 3  # 1 of 10 is allowed
        with pytest.raises(TooManyBadVideos, match=r"2 of 10 videos are unreadable.*bad.tsv"):
            dataset[5]
    assert "v02.mp4' (Invalid data found" in caplog.text
    assert "skipped (1 of 10 videos unreadable so far, listed in" in caplog.text


def test_every_spatial_crop_of_a_temporal_view_shows_that_views_frames(tmp_path):
    """With 3 clips x 3 crops, view (t, s) is crop s (left, centre, right) of exactly the frames
    of temporal view t of 3: the crops must not move the clips in time."""
    videos = _list_dataset(tmp_path, 1, 40)
    sampler = DenseSampler(num_frames=4, sampling_rate=2)
    temporal = VideoDataset(videos, sampler=sampler, training=False, temporal_views=3)
    whole, _, _ = temporal.all_views(0)  # (3, 3, 4, 48, 80), full frames
    frames = [clip_indices(clip) for clip in whole]
    assert frames == [[6, 8, 10, 12], [16, 18, 20, 22], [28, 30, 32, 34]]  # spread over 0..39
    views = VideoDataset(
        videos, sampler=sampler, training=False, temporal_views=3, spatial_views=3, crop_size=48
    )
    clips, _, metas = views.all_views(0)
    assert clips.shape == (9, 3, 4, 48, 48)
    for view, (clip, meta) in enumerate(zip(clips, metas, strict=True)):
        t, s = divmod(view, 3)
        assert (meta["temporal_view"], meta["spatial_view"]) == (t, s)
        assert meta["frame_indices"].tolist() == frames[t], view
        left = (0, 16, 32)[s]
        torch.testing.assert_close(clip, whole[t][..., left : left + 48], msg=f"view {view}")
