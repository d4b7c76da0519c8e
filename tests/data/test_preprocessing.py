"""`Preprocessing` and `EvalClips`: the one description of a model's clips, what a checkpoint
records of it, and the test views and timelines cut from a real video."""

from types import SimpleNamespace

import pytest
import torch

from effvid.data import DenseSampler, Preprocessing, SegmentSampler, open_video
from effvid.data.decoding import VideoInfo
from effvid.data.preprocessing import EvalClips
from tests.data.videos import clip_indices, write_indexed_video

CARD = SimpleNamespace(
    num_frames=8, sampling_rate=None, input_size=48, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0)
)
# mean 0 and std 1: clips keep the frames' values in [0, 1], so their indices can be read back
PLAIN = Preprocessing(num_frames=4, sampling_rate=3, crop_size=48, short_side=48,
                      mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # fmt: skip


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """40 indexed frames at 30 fps, 48x80."""
    return write_indexed_video(tmp_path_factory.mktemp("indexed") / "clip.mp4", 40)


def test_a_cards_preprocessing_and_a_checkpoints_record_of_it():
    from_card = Preprocessing.from_card(CARD)
    assert from_card == Preprocessing(8, 1, 48, 48, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0), "dense")
    assert Preprocessing.from_card(SimpleNamespace(**{**vars(CARD), "sampling_rate": 5})) == (
        Preprocessing(8, 5, 48, 48, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))
    )
    stored = {**PLAIN.as_dict(), "sampling": "segment", "added_later": 1}
    assert stored["mean"] == [0.0, 0.0, 0.0] and isinstance(stored["std"], list)
    resolved = Preprocessing.resolve(stored, CARD)
    assert resolved == Preprocessing(4, 3, 48, 48, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "segment")
    assert Preprocessing.resolve(None, CARD) == from_card == Preprocessing.resolve({}, CARD)
    assert Preprocessing.from_dict(PLAIN.as_dict()) == PLAIN


def test_the_sampler_and_transform_follow_the_preprocessing():
    dense = PLAIN.sampler()
    assert isinstance(dense, DenseSampler) and (dense.num_frames, dense.sampling_rate) == (4, 3)
    segment = Preprocessing(**{**PLAIN.as_dict(), "sampling": "segment"}).sampler()
    assert isinstance(segment, SegmentSampler) and segment.num_segments == 4
    with pytest.raises(ValueError, match=r"^sampling must be one of dense, segment, not 'tsn'$"):
        Preprocessing(**{**PLAIN.as_dict(), "sampling": "tsn"}).sampler()
    transform = Preprocessing.from_card(CARD).eval_transform()
    assert (transform.short_side, transform.mean, transform.std) == (48, CARD.mean, CARD.std)


def test_test_views_are_the_samplers_views_with_their_spans(video):
    clips = EvalClips(PLAIN)
    with open_video(video, short_side=48) as reader:
        plan = clips.plan(reader.info, clips=3)
        many = clips.read_many(reader, plan)
        one = clips.clip(reader, view=1, num_views=3)
        centre = clips.clip(reader)
    views = [clips.sampler.frame_indices(40, view=k, num_views=3) for k in range(3)]
    assert plan.indices == views == [[5, 8, 11, 14], [15, 18, 21, 24], [25, 28, 31, 34]]
    assert plan.spans == [(5 / 30, 15 / 30), (15 / 30, 25 / 30), (25 / 30, 35 / 30)]
    assert len(plan) == 3 and many.shape == (3, 3, 4, 48, 48)
    torch.testing.assert_close(many[1], one)
    torch.testing.assert_close(centre, one)  # one view, its centre: the middle of three
    assert clips.frame_indices(40) == [15, 18, 21, 24]
    with open_video(video) as reader:
        assert _clips_shown(clips, reader, plan) == views
        assert len(clips.plan(reader.info)) == 1  # one clip unless asked


def _clips_shown(clips, reader, plan):
    """The frame indices the pixels of each planned clip show (read without the crop)."""
    shown = []
    for indices in plan.indices:
        frames, _ = clips.transform(reader.read(indices).frames, -1)  # (3, T, 48, 80)
        shown.append(clip_indices(frames))
    return shown


def test_a_timeline_has_a_centred_clip_in_every_window(video):
    clips = EvalClips(PLAIN)
    with open_video(video, short_side=48) as reader:
        plan = clips.plan(reader.info, window=0.5, stride=0.25)  # 15-frame windows every 7 or 8
        many = clips.read_many(reader, plan)
        again = clips.plan(reader.info, window=0.5)  # stride defaults to the window
        long = clips.plan(reader.info, window=10.0)  # longer than the video: the whole video
    starts = [0, 8, 16, 24]
    assert plan.indices == [[s + i for i in (2, 5, 8, 11)] for s in starts]
    assert plan.spans == [(s / 30, (s + 15) / 30) for s in starts]
    assert many.shape == (4, 3, 4, 48, 48)
    for clip, indices in zip(many, plan.indices, strict=True):
        with open_video(video, short_side=48) as reader:
            torch.testing.assert_close(clip, clips.read(reader, indices))
    assert again.spans == [(0.0, 0.5), (0.5, 1.0)]
    assert long.spans == [(0.0, 40 / 30)] and long.indices == [clips.frame_indices(40)]


def _info(num_frames, fps):
    return VideoInfo(num_frames=num_frames, fps=fps, duration=0.0, width=80, height=48)


def test_timelines_follow_the_videos_rate_and_stay_inside_it():
    clips = EvalClips(PLAIN)
    assert clips.preprocessing == PLAIN
    # 10 fps: 1.5 s windows are 15 frames, a 1.3 s stride 13; no window runs past frame 39
    plan = clips.plan(_info(40, 10.0), window=1.5, stride=1.3)
    assert plan.spans == [(0.0, 1.5), (1.3, 2.8)]
    assert clips.plan(_info(40, 10.0), clips=1).spans == [(1.5, 2.5)]
    # a rate the headers do not give: 30 fps
    assert clips.plan(_info(40, 0.0), window=0.5).spans == [(0.0, 0.5), (0.5, 1.0)]
    # windows and strides shorter than a frame: one frame, every frame
    tiny = clips.plan(_info(6, 10.0), window=0.01, stride=0.01)
    assert tiny.spans == [(s / 10, (s + 1) / 10) for s in range(6)]
    assert tiny.indices == [[s] * 4 for s in range(6)]
    every = clips.plan(_info(6, 10.0), window=0.5, stride=0.01)
    assert [start for start, _ in every.spans] == [0.0, 0.1]
