"""The frame cache: clips read from it equal clips decoded from the files, it is built once and
reused, and a video that cannot be decoded stays a bad video."""

from pathlib import Path

import pytest
import torch

from effvid.data import DenseSampler, EvalTransform, VideoDataset, read_list_file
from effvid.data.decoding import VideoDecodeError
from effvid.data.frame_cache import build_frame_cache
from tests.data.videos import write_indexed_video


@pytest.fixture
def videos(tmp_path):
    lines = []
    for index in range(4):
        write_indexed_video(tmp_path / f"v{index}.mp4", 20 + index)
        lines.append(f"v{index}.mp4 {index % 2}")
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    lines.append("broken.mp4 0")
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    return read_list_file(tmp_path / "list.txt")


def _dataset(videos, cache=None, **views):
    return VideoDataset(
        videos,
        sampler=DenseSampler(num_frames=4, sampling_rate=3),
        transform=EvalTransform(short_side=48),
        training=not views,
        crop_size=48,
        max_bad_fraction=0.5,
        frame_cache=cache,
        **views,
    )


def test_cached_clips_equal_decoded_clips(videos, tmp_path):
    cache = build_frame_cache(videos, tmp_path / "cache", workers=2, progress=False)
    for views in ({}, {"temporal_views": 2, "spatial_views": 3}):
        plain, cached = _dataset(videos, **views), _dataset(videos, cache, **views)
        for index in range(len(plain)):
            torch.manual_seed(index)  # the same random training clip
            expected, label, meta = plain[index]
            torch.manual_seed(index)
            clip, cached_label, cached_meta = cached[index]
            assert torch.equal(clip, expected) and label == cached_label
            assert torch.equal(meta["timestamps"], cached_meta["timestamps"])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [cache.folder.name]
    again = build_frame_cache(videos, tmp_path / "cache", progress=False)
    assert again.folder == cache.folder  # reused, not rebuilt


def test_an_undecodable_video_stays_bad_in_the_cache(videos, tmp_path):
    cache = build_frame_cache(videos, tmp_path / "cache", workers=1, progress=False)
    broken = videos.records[-1].path
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4"):
        cache.reader(broken)
    dataset = _dataset(videos, cache)
    dataset[4]  # replaced by the next readable video, as without the cache
    assert str(broken) in dataset.bad_videos.bad


def test_a_cache_finished_first_by_another_run_is_kept(videos, tmp_path, monkeypatch):
    """Two runs building the same cache at once: the one finishing second keeps the first's
    (which may be memory-mapped already) and leaves no folder of its own behind."""
    from effvid.data import frame_cache

    first = build_frame_cache(videos, tmp_path / "cache", workers=1, progress=False)
    first_copy = (first.folder / "frames.u8").stat().st_ino
    real_is_file = Path.is_file
    checks = []

    def not_there_until_we_finish(path):  # the other run finishes while this one decodes
        if path.name == "index.json":
            checks.append(path)
            return len(checks) > 1 and real_is_file(path)
        return real_is_file(path)

    monkeypatch.setattr(frame_cache.Path, "is_file", not_there_until_we_finish)
    again = build_frame_cache(videos, tmp_path / "cache", workers=1, progress=False)
    assert again.folder == first.folder
    assert (first.folder / "frames.u8").stat().st_ino == first_copy
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [first.folder.name]
