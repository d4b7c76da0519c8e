"""One inference interface, every runtime: an exported model predicts and streams in ONNX
Runtime and OpenVINO as the checkpoint does in eager PyTorch, through the same commands."""

import json
import sys

import pytest

from effvid.cli import main
from effvid.errors import MissingExtraError
from effvid.inference.runtime import open_clip_model

pytest.importorskip("onnxruntime")
EXPORTED_RUNTIMES = ["onnxruntime", "openvino"]


def _records(capsys) -> list[dict]:
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def exported_clip(clip_checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("exported") / "clip.onnx"
    assert main(["export", "--checkpoint", str(clip_checkpoint), "--output", str(path)]) == 0
    return path


@pytest.mark.parametrize("runtime", EXPORTED_RUNTIMES)
def test_an_exported_model_predicts_as_the_checkpoint(
    runtime, clip_checkpoint, exported_clip, tiny_videos, capsys
):
    pytest.importorskip(runtime)
    videos = [str(tiny_videos / "videos" / "test" / f"0000{i}.mp4") for i in range(3)]
    assert main(["predict", *videos, "--checkpoint", str(clip_checkpoint), "--json"]) == 0
    eager = _records(capsys)
    command = ["predict", *videos, "--onnx", str(exported_clip), "--runtime", runtime, "--json"]
    assert main(command) == 0
    exported = _records(capsys)
    for a, b in zip(eager, exported, strict=True):
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
        for x, y in zip(a["top"], b["top"], strict=True):
            assert x["score"] == pytest.approx(y["score"], abs=1e-4)


@pytest.mark.parametrize("runtime", EXPORTED_RUNTIMES)
def test_an_exported_streaming_step_streams_as_the_checkpoint(
    runtime, causal_checkpoint, tiny_videos, tmp_path, capsys
):
    pytest.importorskip(runtime)
    source = str(tiny_videos / "videos" / "test" / "00002.mp4")
    step = tmp_path / "step.onnx"
    assert main(["export", "--stream", "--checkpoint", str(causal_checkpoint),
                 "--output", str(step)]) == 0  # fmt: skip
    capsys.readouterr()
    readings = []
    for args in (
        ["--checkpoint", str(causal_checkpoint)],
        ["--onnx", str(step), "--runtime", runtime],
    ):
        assert main(["stream", source, *args, "--json"]) == 0
        readings.append([json.loads(line) for line in capsys.readouterr().out.splitlines()])
    eager, exported = readings
    assert len(eager) == len(exported) > 0
    assert [r["label"] for r in eager] == [r["label"] for r in exported]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(eager, exported, strict=True)) < 1e-4


def test_a_checkpoint_is_refused_for_an_exported_runtime(clip_checkpoint, tiny_videos, capsys):
    video = str(tiny_videos / "videos" / "test" / "00000.mp4")
    command = ["predict", video, "--checkpoint", str(clip_checkpoint), "--runtime", "openvino"]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "export it" in error


def test_an_exported_file_is_refused_for_eager(exported_clip):
    with pytest.raises(ValueError, match="exported file runs in onnxruntime, openvino"):
        open_clip_model(onnx=exported_clip, runtime="eager")


def test_a_missing_runtime_names_the_extra_to_install(exported_clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'effvid\[openvino\]'"):
        open_clip_model(onnx=exported_clip, runtime="openvino")
