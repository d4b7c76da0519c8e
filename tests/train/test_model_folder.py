"""`effvid save-pretrained`: a finished run as a model folder that predicts as its best.pth."""

import hashlib
import json

import pytest
import torch
from safetensors.torch import save_file

import effvid
import effvid.train.model_folder as model_folder
from effvid.cli import main
from effvid.distributed import setup_distributed
from effvid.models.weights import CheckpointMetadata
from effvid.train.trainer import Trainer
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def run(tiny_videos, tmp_path_factory):
    """A finished 1-epoch run on the tiny videos, evaluated on its test split."""
    run = tmp_path_factory.mktemp("run")
    Trainer(tiny_config(tiny_videos, run, train__epochs=1), setup_distributed("cpu"),
            progress=False).fit()  # fmt: skip
    assert main(["eval", "--checkpoint", str(run / "best.pth"), "--split", "test"]) == 0
    return run


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "demo_model"
    assert main(["save-pretrained", str(run), str(out)]) == 0
    return out


def _predict(capsys, video, checkpoint) -> list[dict]:
    capsys.readouterr()
    assert main(["predict", str(video), "--checkpoint", str(checkpoint), "--json",
                 "--workers", "0"]) == 0  # fmt: skip
    return json.loads(capsys.readouterr().out)


def test_the_folder_predicts_exactly_as_the_runs_best_checkpoint(run, folder, tiny_videos, capsys):
    video = tiny_videos / "videos" / "test" / "00000.mp4"
    from_folder = _predict(capsys, video, folder)
    from_best = _predict(capsys, video, run / "best.pth")
    assert from_folder == from_best and len(from_folder[0]["top"]) == 5
    model = effvid.create_model(str(folder), pretrained=True)
    reference, report = effvid.load_model(None, run / "best.pth")
    assert model.class_names == report.class_names
    assert len(model.class_names) == 10
    clip = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model(clip), reference(clip))


def test_the_card_reports_the_run(run, folder):
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: effvid\n")
    assert "`best.pth` of run folder" in card and "epoch 1" in card
    assert "multiply-adds per view" in card and "parameters: 2," in card
    test = json.loads((run / "test_metrics.json").read_text())
    assert f"| test (`test_metrics.json`) | {test['top1']:.2f} |" in card
    assert f"{test['views_per_video']} per video" in card
    assert "validation, during training (epoch 1)" in card and "2 clips x 1 crops" in card
    assert "effvid train --config recipe.yaml" in card and "num_frames: 4" in card
    assert f"effvid predict VIDEO --checkpoint {folder}" in card
    assert f'create_model("{folder}", pretrained=True)' in card
    assert "tests/models/test_video_mobile_former.py" in card
    config = json.loads((folder / "config.json").read_text())
    assert config["recipe"]["model"]["name"] == "vmf_xxs" and config["num_classes"] == 10


def test_eval_takes_the_folder_and_its_recipe(folder, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(folder), "--split", "test",
                 "--output", str(tmp_path)]) == 0  # fmt: skip
    assert "4 videos x 2 views" in capsys.readouterr().out
    assert (tmp_path / "test_metrics.json").is_file()


def test_predictions_record_the_sha256_of_the_folders_weights(folder, tiny_videos, tmp_path):
    video = tiny_videos / "videos" / "test" / "00000.mp4"
    output = tmp_path / "predictions.jsonl"
    assert main(["predict", str(video), "--checkpoint", str(folder), "--output", str(output),
                 "--workers", "0"]) == 0  # fmt: skip
    made_by = json.loads(output.read_text().splitlines()[0])
    weights = (folder / "model.safetensors").read_bytes()
    assert made_by["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert made_by["weights"] == str(folder)


def test_a_run_without_best_checkpoint_uses_its_last_and_says_so(run, tmp_path):
    partial = tmp_path / "run"
    partial.mkdir()
    (partial / "last.pth").write_bytes((run / "last.pth").read_bytes())
    out = model_folder.write_model_folder(partial, tmp_path / "out")
    card = (out / "README.md").read_text()
    assert "`last.pth` of run folder" in card and "no best.pth" in card
    assert "The run folder records no evaluation." in card


def test_an_existing_folder_is_replaced_only_with_overwrite(run, folder, tmp_path, capsys):
    assert main(["save-pretrained", str(run), str(folder)]) == 2
    assert "give --overwrite" in capsys.readouterr().err
    assert main(["save-pretrained", str(tmp_path / "nothing"), str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["save-pretrained", str(tmp_path), str(tmp_path / "o")]) == 2
    assert "not a run folder with a trained epoch" in capsys.readouterr().err


def _bare_weights(path):
    model = effvid.create_model("vmf_xxs", num_classes=7)
    save_file(model.state_dict(), path)
    return model


def test_an_official_checkpoint_takes_effvids_metadata_for_it(tmp_path, monkeypatch):
    _bare_weights(tmp_path / "official.safetensors")
    names = [f"class {i}" for i in range(7)]
    known = CheckpointMetadata(class_names=names, preprocessing={"num_frames": 8})
    asked = []

    def official_metadata(model_name, num_classes):
        asked.append((model_name, num_classes))
        return known

    monkeypatch.setattr(model_folder, "official_metadata", official_metadata)
    out = model_folder.write_model_folder(
        tmp_path / "official.safetensors", tmp_path / "out", model="vmf_xxs"
    )
    assert asked == [("vmf_xxs", 7)]
    loaded = effvid.create_model(str(out), pretrained=True)
    assert loaded.class_names == names and loaded.preprocessing == {"num_frames": 8}


def test_an_official_checkpoint_effvid_knows_nothing_of_has_no_class_names(tmp_path, capsys):
    model = _bare_weights(tmp_path / "official.safetensors")
    assert main(["save-pretrained", str(tmp_path / "official.safetensors"),
                 str(tmp_path / "out")]) == 2  # fmt: skip
    assert "does not name its model" in capsys.readouterr().err
    assert main(["save-pretrained", str(tmp_path / "official.safetensors"), str(tmp_path / "out"),
                 "--model", "vmf_xxs"]) == 0  # fmt: skip
    card = (tmp_path / "out" / "README.md").read_text()
    assert "This folder has no class names" in card and "a checkpoint that does not name" in card
    loaded = effvid.create_model(str(tmp_path / "out"), pretrained=True)
    assert loaded.class_names is None and loaded.num_classes == 7
    assert torch.equal(loaded.get_classifier().weight, model.get_classifier().weight)
    assert main(["eval", "--checkpoint", str(tmp_path / "out")]) == 2
    assert "holds no recipe: give the one it was trained with (--config)" in (
        capsys.readouterr().err
    )


def test_every_command_with_a_checkpoint_takes_a_folder(folder, tiny_videos, tmp_path, capsys):
    from tests.conftest import write_checkpoint

    video = str(tiny_videos / "videos" / "test" / "00000.mp4")
    classes = (tiny_videos / "classes.txt").read_text().split()
    causal = tmp_path / "causal"
    write_checkpoint(tmp_path / "causal.pth", classes, causal=True)
    assert main(["save-pretrained", str(tmp_path / "causal.pth"), str(causal)]) == 0
    assert main(["features", video, "--checkpoint", str(folder), "--workers", "0",
                 "--output", str(tmp_path / "features")]) == 0  # fmt: skip
    assert main(["explain", video, "--checkpoint", str(folder), "--out", str(tmp_path)]) == 0
    assert main(["stream", video, "--checkpoint", str(causal), "--json"]) == 0
    assert main(["export", "--checkpoint", str(folder), "--output", str(tmp_path / "m.onnx"),
                 "--frames", "4", "--size", "32"]) == 0  # fmt: skip
    from effvid.inference.onnx_runtime import read_onnx_metadata

    assert json.loads(read_onnx_metadata(tmp_path / "m.onnx")["effvid.class_names"]) == classes
