"""An image model (the image Mobile-Former, input (B, 3, H, W)) given to a command that runs a
model on video clips is refused at once with one line that names it and points to its VMF,
exit status 2, whether it comes as an effvid checkpoint, a model folder or an exported file;
exporting it (an image-model file) stays possible."""

import pytest
import torch

import effvid
from effvid.cli import main
from effvid.errors import EffvidError
from effvid.inference.predictor import Predictor
from tests.conftest import tiny_recipe, write_recipe

CLASSES = ["a", "b", "c"]
PREPROCESSING = {"num_frames": 1, "sampling_rate": 1, "crop_size": 32, "short_side": 32,
                 "mean": [0.5] * 3, "std": [0.25] * 3}  # fmt: skip


def _image_model(name: str = "mobileformer_26m") -> torch.nn.Module:
    return effvid.create_model(name, num_classes=len(CLASSES))


@pytest.fixture(scope="module")
def image_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("image_model") / "mobileformer.pth"
    torch.save(
        {"model": _image_model().state_dict(), "model_name": "mobileformer_26m",
         "model_args": {}, "class_names": CLASSES, "preprocessing": PREPROCESSING},
        path,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("image_model") / "mobileformer"
    return _image_model().save_pretrained(folder, class_names=CLASSES, preprocessing=PREPROCESSING)


def _video(videos) -> str:
    return str(next((videos / "videos").rglob("*.mp4")))


def _refused_line(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("effvid: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _assert_names_image_model(line: str, source) -> None:
    assert "mobileformer_26m" in line and "image model" in line, line
    assert str(source) in line, line
    assert "load_checkpoint" in line and "vmf_" in line, line  # what to do instead


@pytest.mark.parametrize("kind", ["checkpoint", "folder"])
@pytest.mark.parametrize(
    "command",
    [
        ["predict", "{video}"],
        ["predict", "{video}", "{video2}", "--timeline", "--output", "{tmp}/p.jsonl"],
        ["features", "{video}", "--output", "{tmp}/features"],
        ["stream", "{video}"],
        ["explain", "{video}", "--out", "{tmp}/x.gif"],
    ],
    ids=["predict", "predict-timeline-collection", "features", "stream", "explain"],
)
def test_a_video_command_refuses_an_image_model_in_one_line(
    command, kind, image_checkpoint, image_folder, tiny_videos, tmp_path, capsys
):
    source = image_checkpoint if kind == "checkpoint" else image_folder
    videos = sorted((tiny_videos / "videos").rglob("*.mp4"))[:2]
    values = {"video": videos[0], "video2": videos[1], "tmp": tmp_path}
    argv = [part.format(**values) for part in command] + ["--checkpoint", str(source)]
    line = _refused_line(capsys, main(argv))
    _assert_names_image_model(line, source)
    assert not (tmp_path / "p.jsonl").exists()  # nothing recorded per video


def test_eval_refuses_an_image_model(image_checkpoint, tiny_videos, tmp_path, capsys):
    recipe = tiny_recipe(tiny_videos, tmp_path / "run", model__name="mobileformer_26m")
    recipe["data"]["num_frames"] = 1
    config = write_recipe(recipe, tmp_path / "recipe.yaml")
    code = main(["eval", "--config", str(config), "--checkpoint", str(image_checkpoint)])
    _assert_names_image_model(_refused_line(capsys, code), image_checkpoint)


def test_the_error_names_the_vmf_built_on_the_image_model(tmp_path, tiny_videos):
    folder = _image_model("mobileformer_52m").save_pretrained(
        tmp_path / "mf52", class_names=CLASSES, preprocessing=PREPROCESSING
    )
    with pytest.raises(EffvidError, match=r"image model.*vmf_xxs") as refused:
        Predictor(checkpoint=folder)
    advice = f"effvid.create_model({str(folder)!r}, pretrained=True).state_dict()"
    assert advice in str(refused.value)
    vmf = effvid.create_model("vmf_xxs", num_classes=len(CLASSES))  # the advice works
    report = effvid.load_checkpoint(
        vmf, effvid.create_model(str(folder), pretrained=True).state_dict()
    )
    assert report.inflated and not report.missing


@pytest.mark.slow
def test_an_exported_image_model_is_written_and_refused_by_predict(
    image_checkpoint, tiny_videos, tmp_path, capsys
):
    pytest.importorskip("onnxruntime")
    exported = tmp_path / "mobileformer.onnx"
    argv = ["export", "--checkpoint", str(image_checkpoint), "--output", str(exported)]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["predict", _video(tiny_videos), "--exported", str(exported)])
    line = _refused_line(capsys, code)
    assert "mobileformer_26m" in line and "image model" in line and str(exported) in line
