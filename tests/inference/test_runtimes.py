"""One inference interface, every runtime: a model exported for ONNX Runtime, OpenVINO or
ExecuTorch predicts and streams as the checkpoint does in eager PyTorch, through the same
commands (`effvid export --runtime R`, then `effvid predict/stream --exported F --runtime R`).
Each runtime that is installed is tested."""

import json
import sys

import pytest

from effvid.cli import main
from effvid.errors import MissingExtraError
from effvid.inference.runtime import open_clip_model

pytest.importorskip("onnxruntime")
# (the file `effvid export --runtime` writes, a runtime that runs it)
FORMAT_RUNTIMES = [
    ("onnx", "onnxruntime"),
    ("onnx", "openvino"),
    ("openvino", "openvino"),
    pytest.param("executorch", "executorch", marks=[pytest.mark.edge, pytest.mark.timeout(900)]),
]
SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "executorch": ".pte"}


def _records(capsys) -> list[dict]:
    return json.loads(capsys.readouterr().out)


def _export(checkpoint, folder, format: str, *extra: str):
    pytest.importorskip("executorch.runtime" if format == "executorch" else format)
    path = folder / f"model{SUFFIX[format]}"
    command = ["export", "--checkpoint", str(checkpoint), "--runtime", format, *extra]
    assert main([*command, "--output", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def checkpoints(clip_checkpoint, causal_checkpoint):
    """The checkpoints by the form of their model: a clip VMF, a causal VMF (whose clip form
    is exported without --stream)."""
    return {"clip": clip_checkpoint, "causal": causal_checkpoint}


@pytest.fixture(scope="module")
def exported_clips(checkpoints, tmp_path_factory):
    """Each checkpoint exported once per format (its clip form), on demand."""
    made = {}

    def exported(format: str, form: str = "clip"):
        if (form, format) not in made:
            folder = tmp_path_factory.mktemp(f"{form}-{format}")
            made[form, format] = _export(checkpoints[form], folder, format)
        return made[form, format]

    return exported


@pytest.fixture(scope="module")
def exported_clip(exported_clips):
    return exported_clips("onnx")


@pytest.mark.parametrize("form", ["clip", "causal"])
@pytest.mark.parametrize(("format", "runtime"), FORMAT_RUNTIMES)
def test_an_exported_model_predicts_as_the_checkpoint(
    format, runtime, form, checkpoints, exported_clips, tiny_videos, capsys
):
    pytest.importorskip(runtime if runtime != "executorch" else "executorch.runtime")
    path = exported_clips(format, form)
    capsys.readouterr()
    videos = [str(tiny_videos / "videos" / "test" / f"0000{i}.mp4") for i in range(3)]
    assert main(["predict", *videos, "--checkpoint", str(checkpoints[form]), "--json"]) == 0
    eager = _records(capsys)
    command = ["predict", *videos, "--exported", str(path), "--runtime", runtime, "--json"]
    assert main(command) == 0
    exported = _records(capsys)
    for a, b in zip(eager, exported, strict=True):
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
        for x, y in zip(a["top"], b["top"], strict=True):
            assert x["score"] == pytest.approx(y["score"], abs=1e-4)


@pytest.mark.parametrize(("format", "runtime"), FORMAT_RUNTIMES)
def test_an_exported_streaming_step_streams_as_the_checkpoint(
    format, runtime, causal_checkpoint, tiny_videos, tmp_path, capsys
):
    source = str(tiny_videos / "videos" / "test" / "00002.mp4")
    step = _export(causal_checkpoint, tmp_path, format, "--stream")
    capsys.readouterr()
    readings = []
    for args in (
        ["--checkpoint", str(causal_checkpoint)],
        ["--exported", str(step), "--runtime", runtime],
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


@pytest.mark.parametrize("runtime", ["executorch", "onnxruntime"])
def test_a_file_is_refused_for_a_runtime_that_cannot_run_it(exported_clips, runtime):
    path = exported_clips("openvino")
    with pytest.raises(ValueError, match=f"runs in openvino, not {runtime}.*--runtime {runtime}"):
        open_clip_model(onnx=path, runtime=runtime)


def test_a_missing_runtime_names_the_extra_to_install(exported_clip, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'effvid\[openvino\]'"):
        open_clip_model(onnx=exported_clip, runtime="openvino")


@pytest.mark.edge
@pytest.mark.timeout(900)
def test_bench_runs_an_executorch_program(tmp_path, capsys):
    pytest.importorskip("executorch.runtime")
    csv = tmp_path / "bench.csv"
    command = ["bench", "--model", "x3d_xs", "--runtime", "executorch", "--size", "32"]
    assert main([*command, "--frames", "4", "--runs", "2", "--warmup", "1", "--csv", str(csv)]) == 0
    assert "executorch" in capsys.readouterr().out and csv.exists()
