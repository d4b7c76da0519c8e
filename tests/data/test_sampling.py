"""Clip sampling: dense and segment conventions, training draws and distinct test views."""

import itertools

import pytest
import torch

from effvid.data import DenseSampler, SegmentSampler


def test_dense_training_clips_are_random_and_in_range():
    sampler = DenseSampler(num_frames=8, sampling_rate=4)
    generator = torch.Generator().manual_seed(0)
    starts = set()
    for _ in range(200):
        indices = sampler.frame_indices(100, generator=generator)
        assert len(indices) == 8 and indices[-1] < 100
        assert [b - a for a, b in itertools.pairwise(indices)] == [4] * 7
        starts.add(indices[0])
    assert min(starts) == 0 and max(starts) == 100 - 29  # every start can come up


def test_dense_test_views_are_spread_and_distinct():
    sampler = DenseSampler(num_frames=8, sampling_rate=8)
    views = [sampler.frame_indices(300, view=k, num_views=3) for k in range(3)]
    starts = [clip[0] for clip in views]
    assert starts == [round(243 * (k + 0.5) / 3) for k in range(3)]
    assert len({tuple(clip) for clip in views}) == 3
    assert sampler.frame_indices(300, view=0, num_views=1)[0] == round(243 / 2)  # the centre


def test_dense_short_video_pad_and_loop():
    pad = DenseSampler(num_frames=8, sampling_rate=2)
    assert pad.frame_indices(6, view=0, num_views=1) == [0, 2, 4, 5, 5, 5, 5, 5]
    loop = DenseSampler(num_frames=8, sampling_rate=2, short_video="loop")
    assert loop.frame_indices(6, view=0, num_views=1) == [2, 4, 0, 2, 4, 0, 2, 4]
    views = {tuple(loop.frame_indices(6, view=k, num_views=3)) for k in range(3)}
    assert len(views) == 3
    with pytest.raises(ValueError, match="short_video"):
        DenseSampler(num_frames=8, short_video="repeat")


def test_segment_training_takes_one_frame_per_segment():
    sampler = SegmentSampler(num_segments=8)
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(100):
        indices = sampler.frame_indices(80, generator=generator)
        assert [index // 10 for index in indices] == list(range(8))
        seen.update(indices)
    assert len(seen) > 60  # random offsets, not always the same frame


def test_segment_test_views_differ_in_every_segment():
    # The classic bug: every view takes the segment centres, so all test views are identical.
    sampler = SegmentSampler(num_segments=8)
    views = [sampler.frame_indices(48, view=k, num_views=3) for k in range(3)]
    for segment in range(8):
        frames = [clip[segment] for clip in views]
        assert len(set(frames)) == 3
        assert all(segment * 6 <= frame < (segment + 1) * 6 for frame in frames)
    assert sampler.frame_indices(48, view=0, num_views=1) == [3 + 6 * s for s in range(8)]


def test_segments_of_a_video_shorter_than_the_clip():
    assert SegmentSampler(num_segments=8).frame_indices(4, view=0, num_views=1) == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def test_one_view_is_the_default_and_frames_are_consecutive_by_default():
    sampler = DenseSampler(num_frames=4)
    assert sampler.frame_indices(10, view=0) == [3, 4, 5, 6]  # the centre of 0..6
    assert SegmentSampler(num_segments=2).frame_indices(8, view=0) == [2, 6]


@pytest.mark.parametrize(
    "make",
    [lambda: DenseSampler(num_frames=8, sampling_rate=2), lambda: SegmentSampler(num_segments=8)],
    ids=["dense", "segment"],
)
def test_training_clips_follow_the_generator_given(make):
    """Seeded generators give the same clips whatever else drew random numbers meanwhile (what
    makes the data of a resumed run the uninterrupted run's), other seeds other clips."""

    def clips(seed):
        generator = torch.Generator().manual_seed(seed)
        drawn = []
        for _ in range(20):
            torch.rand(3)  # someone else drawing from the global generator
            drawn.append(make().frame_indices(100, generator=generator))
        return drawn

    assert clips(1) == clips(1)
    assert clips(1) != clips(2)


def test_short_videos_pad_from_frame_0_and_loop_from_anywhere():
    generator = torch.Generator().manual_seed(0)
    pad, loop = (DenseSampler(num_frames=4, sampling_rate=2, short_video=kind)
                 for kind in ("pad", "loop"))  # fmt: skip
    assert {pad.frame_indices(5, generator=generator)[0] for _ in range(50)} == {0}
    assert {loop.frame_indices(5, generator=generator)[0] for _ in range(200)} == set(range(5))
    # a video exactly as long as the clip's span is not short: one clip, from frame 0
    assert loop.frame_indices(7, view=0) == [0, 2, 4, 6]
    assert {loop.frame_indices(7, generator=generator)[0] for _ in range(20)} == {0}


def test_clip_lengths_below_one_are_refused_and_one_is_fine():
    for bad in (dict(num_frames=0), dict(num_frames=4, sampling_rate=0)):
        with pytest.raises(ValueError, match=r"^num_frames and sampling_rate must be >= 1$"):
            DenseSampler(**bad)
    with pytest.raises(ValueError, match=r"^num_segments must be >= 1$"):
        SegmentSampler(num_segments=0)
    assert DenseSampler(num_frames=1).frame_indices(9, view=0) == [4]
    assert SegmentSampler(num_segments=1).frame_indices(9, view=0) == [4]
