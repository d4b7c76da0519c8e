"""Every bad input gets one clear line on stderr and exit status 2, never a traceback: every
recipe key with a value of the wrong type and one out of range, every argument of every model
family's constructor (model.args) likewise, every key of an exported file's metadata, the
command's numeric options,
unreadable ONNX files and annotations, unknown classes, and a failed export that must not
replace the good file already there."""

import json
import typing
from collections.abc import Sequence

import pytest
import torch

from effvid.cli import main
from effvid.train.config import DEFAULTS
from tests.conftest import write_checkpoint

# key: (a value of the wrong type, a value out of range or None where no range applies)
BAD_RECIPE_VALUES = {
    "model.name": ("5", "vmf_nosuch"),
    "model.args": ("5", "{temporal_kernel: 2}"),
    "model.checkpoint": ("[1]", None),
    "data.format": ("5", "avi"),
    "data.train": ("[1]", None),
    "data.val": ("[1]", None),
    "data.test": ("[1]", None),
    "data.root": ("[1]", None),
    "data.classes": ("[1]", None),
    "data.split": ("abc", "4"),
    "data.num_frames": ("abc", "0"),
    "data.sampling": ("5", "random"),
    "data.sampling_rate": ("abc", "0"),
    "data.crop_size": ("abc", "7"),
    "data.short_side": ("abc", "16"),
    "data.scale_jitter": ("abc", "[200, 100]"),
    "data.crop_area": ("abc", "[0, 2]"),
    "data.crop_aspect": ("abc", "[2, 1]"),
    "data.flip": ("maybe", None),
    "data.randaugment": ("abc", "{num_ops: 2, magnitude: 99}"),
    "data.color_jitter": ("abc", "5"),
    "data.mean": ("abc", "[1, 2]"),
    "data.std": ("abc", "[0, 1, 1]"),
    "data.workers": ("abc", "-1"),
    "data.frame_cache": ("maybe", None),
    "data.max_bad_fraction": ("abc", "1.5"),
    "data.demo_task": ("5", "medium"),
    "data.demo_videos": ("abc", "3"),
    "train.epochs": ("true", "0"),
    "train.batch_size": ("abc", "0"),
    "train.accumulation": ("abc", "0"),
    "train.optimizer": ("5", "adam"),
    "train.lr": ("abc", "0"),
    "train.weight_decay": ("abc", "-1"),
    "train.no_decay": ("abc", "[norms]"),
    "train.betas": ("abc", "[0.9, 1.5]"),
    "train.momentum": ("abc", "2"),
    "train.warmup_epochs": ("abc", "-3"),
    "train.warmup_start": ("abc", "0"),
    "train.min_lr": ("abc", "-1"),
    "train.label_smoothing": ("abc", "5"),
    "train.mixup": ("abc", "-1"),
    "train.cutmix": ("abc", "-1"),
    "train.clip_grad": ("abc", "0"),
    "train.ema": ("abc", "1"),
    "train.amp": ("5", "fp8"),
    "train.sync_bn": ("maybe", None),
    "train.seed": ("abc", "-1"),
    "eval.clips": ("abc", "0"),
    "eval.crops": ("abc", "2"),
    "eval.aggregate": ("5", "median"),
    "eval.every": ("abc", "0"),
    "eval.batch_size": ("abc", "0"),
    "output.dir": ("[1]", None),
    "output.keep_every": ("abc", "-1"),
    "log.backends": ("tensorboard", "[neptune]"),
    "log.run_name": ("[1]", None),
    "log.mlflow_tracking_uri": ("[1]", None),
    "log.mlflow_experiment": ("[1]", None),
    "log.wandb_project": ("[1]", None),
    "log.wandb_entity": ("[1]", None),
}
CASES = [
    pytest.param(key, value, id=f"{key}={value}")
    for key, values in BAD_RECIPE_VALUES.items()
    for value in values
    if value is not None
]


def test_every_recipe_key_has_bad_values():
    keys = {f"{section}.{key}" for section, values in DEFAULTS.items() for key in values}
    assert keys == set(BAD_RECIPE_VALUES)


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("effvid")
    return lines[0]


@pytest.fixture
def no_training(monkeypatch):
    """A bad value that got through would start a run: fail instead."""

    def refuse(*args, **kwargs):
        raise AssertionError("a bad recipe value reached the trainer")

    monkeypatch.setattr("effvid.train.trainer.Trainer.__init__", refuse)


@pytest.mark.parametrize(("key", "value"), CASES)
def test_bad_recipe_values_are_one_line_errors(key, value, capsys, no_training):
    assert main(["train", "--config", "demo", f"{key}={value}"]) == 2
    line = _one_line_error(capsys)
    assert key in line or line.startswith("effvid: error: model"), line  # the key is named


# One variant per family; every argument its constructor declares, with a value of the wrong type
# and, where its kind has a range, one outside it (sizes >= 1, rates in [0, 1)). Derived from the
# constructor's type hints, like the check itself, so that a new argument is fuzzed too.
FAMILIES = ("vmf_xxs", "mobileformer_26m", "x3d_xs", "dualformer_t")


def _bad_argument_values(name: str, hint) -> list[str]:
    if hint is bool:
        return ["maybe", "1"]
    if hint is int:
        return ["abc", "true", "2.5", "0", "-3"]
    if hint is float:
        return ["abc", "true", "-1", "2" if "drop" in name else ".nan"]
    if typing.get_origin(hint) is Sequence:
        return ["abc", "7", "[abc]"]
    if set(typing.get_args(hint)) == {float, type(None)}:
        return ["abc", "[1]", "-1"]
    return []  # not a value a recipe can give (a module): left to the constructor


def _model_argument_cases():
    from effvid.models.registry import model_builder

    for model in FAMILIES:
        model_class = typing.get_type_hints(model_builder(model))["return"]
        for argument, parameter in model_class.constructor_parameters().items():
            for value in _bad_argument_values(argument, parameter.annotation):
                yield pytest.param(model, argument, value, id=f"{model}.{argument}={value}")


@pytest.mark.parametrize(("model", "argument", "value"), list(_model_argument_cases()))
def test_bad_model_arguments_are_one_line_errors(model, argument, value, capsys, no_training):
    overrides = [f"model.name={model}", f"model.args.{argument}={value}"]
    assert main(["train", "--config", "demo", *overrides]) == 2
    line = _one_line_error(capsys)
    assert f"'model.args.{argument}" in line, line


def test_every_family_is_fuzzed():
    from effvid.models import get_model_card, list_models

    assert {get_model_card(name).family for name in list_models()} == {
        get_model_card(name).family for name in FAMILIES
    }


@pytest.mark.parametrize(
    "arguments",
    [
        ["predict", "v.mp4", "--top-k", "-1"],
        ["predict", "v.mp4", "--top-k", "0"],
        ["predict", "v.mp4", "--clips", "0"],
        ["predict", "v.mp4", "--clips", "two"],
        ["predict", "v.mp4", "--stride", "0"],
        ["predict", "v.mp4", "--window", "nan"],
        ["predict", "v.mp4", "--window", "-2"],
        ["bench", "--model", "vmf_xxs", "--runs", "0"],
        ["bench", "--model", "vmf_xxs", "--warmup", "-1"],
        ["bench", "--model", "vmf_xxs", "--threads", "0"],
        ["bench", "--model", "vmf_xxs", "--batch", "1.5"],
        ["bench", "--model", "vmf_xxs", "--frames", "0"],
        ["export", "--model", "vmf_xxs", "--tolerance", "inf"],
        ["export", "--model", "vmf_xxs", "--size", "-3"],
        ["explain", "v.mp4", "--fps", "0"],
        ["make-demo-data", "--videos", "0"],
        ["make-demo-data", "--seed", "-1"],
        ["check-videos", "x", "--workers", "0"],
    ],
    ids=" ".join,
)
def test_bad_numeric_options_are_one_line_errors(arguments, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(arguments)
    assert exit_status.value.code == 2
    assert "error: argument --" in _one_line_error(capsys)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An effvid-style checkpoint of a 3-class vmf_xxs with its model name and class names."""
    path = tmp_path_factory.mktemp("checkpoint") / "model.pth"
    return write_checkpoint(path, ["jump", "run", "swim"], causal=False)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from tests.data.videos import write_indexed_video

    return write_indexed_video(tmp_path_factory.mktemp("video") / "clip.mp4", 12)


def _onnx_without_effvid_metadata(path):
    onnx = pytest.importorskip("onnx")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    model = onnx.helper.make_model(graph)
    onnx.save(model, str(path))
    return model


def test_unusable_onnx_files_are_one_line_errors(tmp_path, video, capsys):
    onnx = pytest.importorskip("onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx file at all" * 10)
    plain = tmp_path / "plain.onnx"
    model = _onnx_without_effvid_metadata(plain)
    malformed = tmp_path / "malformed.onnx"
    onnx.helper.set_model_props(model, {"effvid.card": "{not json"})
    onnx.save(model, str(malformed))
    expected = {
        garbage: "is not a readable ONNX file",
        plain: "carries no effvid metadata",
        malformed: "carries malformed effvid metadata",
        tmp_path / "missing.onnx": "does not exist",
    }
    for path, message in expected.items():
        assert main(["predict", str(video), "--onnx", str(path)]) == 2
        assert message in _one_line_error(capsys)


# every key of an exported file's effvid metadata, each with values of the wrong type or range
BAD_METADATA = {
    "effvid.card": ["{not json", "[]", '{"name": 5}', "null"],
    "effvid.class_names": ["{not json", '"abc"', "[1, 2, 3]", '{"a": 1}'],
    "effvid.stream": ["{not json", "[]", '{"chunk": "x"}'],
}
BAD_PREPROCESSING = {
    "num_frames": ["abc", 0, -3, 2.5, True, None, [4]],
    "sampling_rate": ["abc", 0, 1.5, None],
    "crop_size": ["abc", 0, -32, 32.0, None],
    "short_side": ["abc", 0, None],
    "mean": ["red", [0.5], None, 0.5],
    "std": ["abc", [0, 0, 0], [-1, 1, 1], None],
    "sampling": [5, "random", None],
}


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    path = tmp_path_factory.mktemp("exported") / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(path)]) == 0
    return path


def _with_metadata(exported, path, key: str, value: str):
    onnx = pytest.importorskip("onnx")
    from effvid.inference.onnx_runtime import read_onnx_metadata

    proto = onnx.load(str(exported))
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, read_onnx_metadata(exported) | {key: value})
    onnx.save(proto, str(path))
    return path


@pytest.mark.parametrize(
    ("key", "value"),
    [(key, value) for key, values in BAD_METADATA.items() for value in values]
    + [
        ("effvid.preprocessing", {field: value})
        for field, values in BAD_PREPROCESSING.items()
        for value in values
    ],
)
def test_exported_files_with_bad_metadata_are_one_line_errors(
    exported, tmp_path, video, capsys, key, value
):
    """Every key of the metadata an exported file carries, wrong: one line naming the file,
    for prediction and streaming alike, never a traceback or a crash in a worker."""
    if key == "effvid.preprocessing":
        from effvid.inference.onnx_runtime import read_onnx_metadata

        value = json.dumps(json.loads(read_onnx_metadata(exported)[key]) | value)
    path = _with_metadata(exported, tmp_path / "bad.onnx", key, value)
    command = "stream" if key == "effvid.stream" else "predict"
    assert main([command, str(video), "--exported", str(path)]) == 2
    assert "bad.onnx" in _one_line_error(capsys)


def test_deeply_nested_json_annotations_are_one_line_errors(tmp_path, capsys):
    annotation = tmp_path / "train.json"
    annotation.write_text("[" + "[" * 100_000 + "]" * 100_000 + "]")
    (tmp_path / "labels.json").write_text('{"a": "0"}')
    assert main(["check-videos", str(annotation)]) == 2
    assert "nested too deeply" in _one_line_error(capsys)


def test_explain_refuses_an_unknown_target_class_with_either_method(checkpoint, video, capsys):
    for method in ("tokens", "grad-cam"):
        command = ["explain", str(video), "--checkpoint", str(checkpoint), "--method", method]
        assert main([*command, "--target", "NOSUCHCLASS", "--out", "pictures"]) == 2
        assert "unknown class 'NOSUCHCLASS'" in _one_line_error(capsys)


def test_commands_take_the_model_name_from_an_effvid_checkpoint(checkpoint, video, capsys):
    assert main(["predict", str(video), "--checkpoint", str(checkpoint), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["top"][0]["label"] in ("jump", "run", "swim")
    bare = checkpoint.with_name("bare.pth")
    torch.save(torch.load(checkpoint, weights_only=True)["model"], bare)
    assert main(["predict", str(video), "--checkpoint", str(bare)]) == 2
    assert "does not name its model" in _one_line_error(capsys)


def test_a_failed_export_leaves_the_previous_file_untouched(checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    output = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--output", str(output)]) == 0
    good = output.read_bytes()
    capsys.readouterr()
    missing_video = tmp_path / "no_such_video.mp4"
    command = ["export", "--checkpoint", str(checkpoint), "--output", str(output)]
    assert main([*command, "--check-video", str(missing_video)]) == 2
    _one_line_error(capsys)
    assert main([*command, "--tolerance", "1e-30"]) == 2  # the parity check fails
    assert "does not reproduce the eager model" in _one_line_error(capsys)
    assert output.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize(
    "command",
    [
        ["train", "--config", "demo"],
        ["demo"],
        ["predict", "VIDEO", "--checkpoint", "CHECKPOINT"],
        ["features", "VIDEO", "--checkpoint", "CHECKPOINT", "--output", "f.npz"],
        ["bench", "--model", "vmf_xxs", "--frames", "4", "--size", "32"],
    ],
    ids=lambda command: command[0],
)
def test_cuda_asked_for_without_a_cuda_device_is_a_one_line_error(
    command, checkpoint, video, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)  # a run that got through would write here, not in the repo
    places = {"VIDEO": str(video), "CHECKPOINT": str(checkpoint)}
    assert main([places.get(word, word) for word in command] + ["--device", "cuda"]) == 2
    assert "no CUDA device is available" in _one_line_error(capsys)
