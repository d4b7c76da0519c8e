"""An exported file's metadata is checked against its graph when it is loaded and when it is
written: a file whose metadata does not fit its graph is refused with one line naming it, never
run into wrong labels or a crash in a worker."""

import json

import pytest

from effvid.cli import main
from effvid.errors import InputError, ModelFileError
from effvid.inference.onnx_runtime import read_onnx_metadata
from effvid.inference.runtime import open_clip_model

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(clip_checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("metadata") / "clip.onnx"
    assert main(["export", "--checkpoint", str(clip_checkpoint), "--output", str(path)]) == 0
    return path


def _with_metadata(source, target, **changes) -> str:
    proto = onnx.load(str(source))
    metadata = read_onnx_metadata(source) | changes
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(target))
    return str(target)


def _changed_preprocessing(exported, **changes) -> str:
    preprocessing = json.loads(read_onnx_metadata(exported)["effvid.preprocessing"])
    return json.dumps(preprocessing | changes)


def test_class_names_that_do_not_match_the_logits_are_refused(exported, tmp_path):
    names = json.dumps([f"class {i}" for i in range(7)])  # the graph gives 10 logits
    path = _with_metadata(exported, tmp_path / "seven.onnx", **{"effvid.class_names": names})
    with pytest.raises(ModelFileError, match=r"seven.onnx names 7 classes for 10 logits"):
        open_clip_model(onnx=path)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"crop_size": "abc"}, "crop_size: Input should be a valid integer"),
        ({"num_frames": 0}, "num_frames must be >= 1"),
        ({"num_frames": True}, "num_frames: Input should be a valid integer"),
        ({"mean": "red"}, "mean"),
        ({"sampling": "random"}, "sampling"),
    ],
)
def test_malformed_preprocessing_is_refused_with_the_file(exported, tmp_path, changes, reason):
    text = _changed_preprocessing(exported, **changes)
    path = _with_metadata(exported, tmp_path / "bad.onnx", **{"effvid.preprocessing": text})
    with pytest.raises(ModelFileError, match=r"bad\.onnx carries malformed effvid metadata") as e:
        open_clip_model(onnx=path)
    assert reason in str(e.value)


def test_a_crop_other_than_the_graph_input_is_refused(exported, tmp_path, tiny_videos, capsys):
    text = _changed_preprocessing(exported, crop_size=48, short_side=48)
    path = _with_metadata(exported, tmp_path / "crop.onnx", **{"effvid.preprocessing": text})
    video = str(tiny_videos / "videos" / "test" / "00000.mp4")
    assert main(["predict", video, "--exported", path]) == 2
    error = capsys.readouterr().err
    assert (
        error.count("\n") == 1 and "takes 32x32 inputs but its preprocessing crops 48x48" in error
    )


@pytest.mark.parametrize(("size", "frames", "short_side"), [(48, 6, 48), (7, 4, 7)])
def test_export_at_another_size_records_that_size(
    clip_checkpoint, tmp_path, tiny_videos, capsys, size, frames, short_side
):
    """`export --size` and `--frames` used to keep the checkpoint's preprocessing in the file:
    prediction then fed it clips of the wrong size and crashed."""
    path = tmp_path / "resized.onnx"
    command = ["export", "--checkpoint", str(clip_checkpoint), "--size", str(size)]
    assert main([*command, "--frames", str(frames), "--output", str(path)]) == 0
    preprocessing = json.loads(read_onnx_metadata(path)["effvid.preprocessing"])
    assert (preprocessing["crop_size"], preprocessing["num_frames"]) == (size, frames)
    assert preprocessing["short_side"] == short_side  # scaled with the crop (from 32)
    video = str(tiny_videos / "videos" / "test" / "00000.mp4")
    capsys.readouterr()
    assert main(["predict", video, "--exported", str(path), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)[0]["top"]) == 5


def test_a_size_the_model_cannot_take_is_refused_before_export(tmp_path, capsys):
    path = tmp_path / "tiny.onnx"
    command = ["export", "--model", "dualformer_t", "--size", "7", "--output", str(path)]
    assert main(command) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "cannot take a clip of (T, H, W) = (32, 7, 7)" in error
    assert not path.exists()


def test_an_output_with_the_wrong_suffix_is_refused(tmp_path):
    from effvid.deploy.export import output_path

    with pytest.raises(InputError, match=r"an executorch file ends in \.pte"):
        output_path(tmp_path / "model.onnx", "vmf_xxs", "executorch")
