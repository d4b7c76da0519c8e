"""Evaluation outputs and prediction on real videos, eager and ONNX, from a trained checkpoint."""

import json

import pytest
import torch

from effvid.cli import main
from effvid.deploy.export import export_registered_model
from effvid.distributed import setup_distributed
from effvid.inference.onnx_runtime import read_onnx_metadata
from effvid.inference.predictor import Predictor
from effvid.train.trainer import Trainer
from tests.conftest import tiny_recipe, write_recipe


@pytest.fixture(scope="module")
def trained(tiny_videos, tmp_path_factory):
    """(recipe file, best checkpoint) of a 1-epoch run on the tiny videos."""
    run = tmp_path_factory.mktemp("run")
    recipe = tiny_recipe(tiny_videos, run, train__epochs=1)
    Trainer(recipe_config(recipe), setup_distributed("cpu"), progress=False).fit()
    return write_recipe(recipe, run / "recipe.yaml"), run / "best.pth"


def recipe_config(recipe):
    from effvid.train.config import load_config

    return load_config(recipe)


def test_eval_command_writes_every_output(trained, tmp_path, capsys):
    recipe, checkpoint = trained
    code = main(["eval", "--config", str(recipe), "--checkpoint", str(checkpoint), "--split",
                 "test", "--output", str(tmp_path), "eval.crops=3"])  # fmt: skip
    assert code == 0
    assert "4 videos x 6 views" in capsys.readouterr().out
    for name in ("metrics.json", "predictions.json", "predictions.csv", "confusion.csv",
                 "confusion.png"):  # fmt: skip
        assert (tmp_path / f"test_{name}").is_file(), name
    metrics = json.loads((tmp_path / "test_metrics.json").read_text())
    assert metrics["videos"] == 4 and 0 <= metrics["top1"] <= 100
    predictions = json.loads((tmp_path / "test_predictions.json").read_text())
    assert len(predictions) == 4 and len(predictions[0]["top_k"]) == 5
    assert sum(int(n) for row in (tmp_path / "test_confusion.csv").read_text().splitlines()[1:]
               for n in row.split(",")[1:]) == 4  # fmt: skip


def test_predict_whole_video_and_timeline(trained, tiny_videos, capsys):
    _, checkpoint = trained
    video = tiny_videos / "videos" / "test" / "00000.mp4"
    predictor = Predictor("vmf_xxs", checkpoint)
    assert predictor.preprocessing.num_frames == 4 and predictor.preprocessing.crop_size == 32
    prediction = predictor.predict(video, top_k=3, clips=3)
    assert len(prediction.labels) == 3 and prediction.labels[0] in predictor.class_names
    assert sum(prediction.scores) <= 1.0 + 1e-6
    timeline = predictor.timeline(video, window=0.2, stride=0.1)
    assert len(timeline) >= 2 and all(row.start < row.end for row in timeline)
    assert main(["predict", str(video), "--model", "vmf_xxs", "--checkpoint", str(checkpoint),
                 "--json", "--top-k", "2"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["video"] == str(video) and len(printed[0]["top"]) == 2


def test_onnx_export_of_a_checkpoint_predicts_like_eager(trained, tiny_videos, tmp_path):
    _, checkpoint = trained
    videos = sorted((tiny_videos / "videos" / "test").glob("*.mp4"))
    result = export_registered_model(
        "vmf_xxs", tmp_path / "model.onnx", checkpoint=checkpoint, check_videos=videos[:2]
    )
    assert result.input_shape == (1, 3, 4, 32, 32)  # the checkpoint's clips, not the card's
    assert "video 00000.mp4" in result.check.differences and result.check.worst < 1e-4
    metadata = read_onnx_metadata(result.path)
    assert json.loads(metadata["effvid.preprocessing"])["crop_size"] == 32
    eager, exported = Predictor("vmf_xxs", checkpoint), Predictor(onnx=result.path)
    assert exported.class_names == eager.class_names
    for video in videos:
        a, b = eager.predict(video, clips=2), exported.predict(video, clips=2)
        assert a.labels == b.labels
        torch.testing.assert_close(
            torch.tensor(a.scores), torch.tensor(b.scores), atol=1e-5, rtol=0
        )
