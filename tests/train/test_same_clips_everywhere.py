"""Prediction, evaluation and export's check on real videos read the same clip of a video, for a
dense and for a segment-sampled recipe (one preprocessing builder: `effvid.data.EvalClips`)."""

import pytest
import torch

from effvid.data import Preprocessing, read_list_file
from effvid.deploy.onnx_export import centre_clip
from effvid.inference.predictor import Predictor
from effvid.models import create_model, get_model_card
from effvid.train import recipe_data
from effvid.train.config import load_config
from tests.data.videos import write_indexed_video

FRAMES, SIZE = 4, 48


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    folder = tmp_path_factory.mktemp("indexed")
    path = write_indexed_video(folder / "clip.mp4", 40)
    (folder / "list.txt").write_text("clip.mp4 0\n")
    return path


def _recipe(folder, sampling: str) -> dict:
    data = {"format": "list", "root": str(folder), "val": str(folder / "list.txt"),
            "num_frames": FRAMES, "sampling_rate": 3, "sampling": sampling,
            "crop_size": SIZE, "short_side": SIZE}  # fmt: skip
    return load_config({"model": {"name": "vmf_xxs"}, "data": data})


def _checkpoint(path, config) -> None:
    card = get_model_card("vmf_xxs")
    preprocessing = recipe_data.recipe_preprocessing(config["data"], card)
    content = {
        "model": create_model("vmf_xxs", num_classes=1).state_dict(),
        "model_name": "vmf_xxs",
        "class_names": ["only"],
        "preprocessing": preprocessing.as_dict(),
    }
    torch.save(content, path)


@pytest.mark.parametrize("sampling", ["dense", "segment"])
def test_predict_eval_and_export_read_the_same_clip(video, tmp_path, sampling):
    config = _recipe(video.parent, sampling)
    card = get_model_card("vmf_xxs")
    views = recipe_data.EvalViews(clips=1, crops=1)
    videos = read_list_file(video.parent / "list.txt", classes=["only"])
    evaluated = recipe_data.eval_dataset(config["data"], card, videos, views)[0][0]

    _checkpoint(tmp_path / "model.pth", config)
    predictor = Predictor("vmf_xxs", tmp_path / "model.pth")
    seen = []
    model = predictor.model
    predictor.model = lambda clips: seen.append(clips) or model(clips)
    predictor.predict(video, clips=1)
    predicted = seen[0][0]

    preprocessing = Preprocessing.from_dict(predictor.preprocessing.as_dict())
    exported = centre_clip(video, preprocessing, (1, 3, FRAMES, SIZE, SIZE))[0]

    assert evaluated.shape == (3, FRAMES, SIZE, SIZE)
    torch.testing.assert_close(predicted, evaluated, rtol=0, atol=0)
    torch.testing.assert_close(exported, evaluated, rtol=0, atol=0)


def test_dense_and_segment_recipes_read_different_frames(video):
    """The comparison above can fail: the two samplings give different clips of this video."""
    card = get_model_card("vmf_xxs")
    clips = {
        sampling: recipe_data.recipe_preprocessing(_recipe(video.parent, sampling)["data"], card)
        for sampling in ("dense", "segment")
    }
    dense = clips["dense"].sampler().frame_indices(40, view=0, num_views=1)
    segment = clips["segment"].sampler().frame_indices(40, view=0, num_views=1)
    assert dense == [15, 18, 21, 24] and segment == [5, 15, 25, 35]
