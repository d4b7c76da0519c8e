"""Model folders: written whole, read back into the same model, refused when they do not fit."""

import json

import pytest
import torch

import effvid
from effvid.models.pretrained import CONFIG_FILE, WEIGHTS_FILE, read_model_folder
from effvid.models.registry import NoPretrainedWeightsError
from effvid.models.weights import CheckpointError
from tests.conftest import REDUCED_CONFIG, reduced_model, small_input

# The smallest registered model of each family.
ONE_PER_FAMILY = ["mobileformer_26m", "vmf_xxs", "x3d_xs", "dualformer_t"]
PREPROCESSING = {"num_frames": 4, "sampling_rate": 2, "crop_size": 64, "short_side": 64,
                 "mean": [0.5] * 3, "std": [0.25] * 3}  # fmt: skip


def _saved(folder, name="vmf_xxs", classes=("jump", "run", "swim")):
    model = effvid.create_model(name, num_classes=len(classes)).eval()
    model.save_pretrained(folder, class_names=list(classes), preprocessing=PREPROCESSING)
    return model


def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_a_folder_gives_back_the_same_model_for_every_family(name, tmp_path):
    model = reduced_model(name, num_classes=3).eval()
    names = ["a", "b", "c"]
    model.save_pretrained(tmp_path / "model", class_names=names)
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "README.md", "config.json", "model.safetensors"
    ]  # fmt: skip
    loaded = effvid.create_model(str(tmp_path / "model"), pretrained=True)
    assert loaded.model_name == name and not loaded.training
    assert loaded.class_names == names and loaded.num_classes == 3
    reduced = REDUCED_CONFIG.get(effvid.get_model_card(name).family, {})
    assert loaded.model_args == json.loads(json.dumps(reduced))  # tuples come back as lists
    x = small_input(effvid.get_model_card(name))
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_the_folder_records_what_rebuilds_the_model_and_a_model_card(tmp_path):
    _saved(tmp_path / "m")
    config = json.loads((tmp_path / "m" / CONFIG_FILE).read_text())
    assert config["library"] == "effvid" and config["format_version"] == 1
    assert config["model_name"] == "vmf_xxs" and config["num_classes"] == 3
    assert config["class_names"] == ["jump", "run", "swim"]
    assert config["preprocessing"] == PREPROCESSING and config["model_args"] == {}
    card = (tmp_path / "m" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: effvid\n")
    assert "pipeline_tag: video-classification" in card
    assert f'create_model("{tmp_path / "m"}", pretrained=True)' in card
    loaded, report = effvid.load_model(None, tmp_path / "m")
    assert report.class_names == ["jump", "run", "swim"] and report.preprocessing == PREPROCESSING
    assert loaded.preprocessing == PREPROCESSING


def test_without_pretrained_the_folder_gives_the_architecture_and_classes(tmp_path):
    trained = _saved(tmp_path / "m")
    fresh = effvid.create_model(tmp_path / "m")
    assert fresh.class_names == ["jump", "run", "swim"] and fresh.num_classes == 3
    assert not torch.equal(fresh.get_classifier().weight, trained.get_classifier().weight)


def test_another_class_count_starts_a_fine_tuning_with_a_new_classifier(tmp_path):
    trained = _saved(tmp_path / "m")
    tuned = effvid.create_model(tmp_path / "m", pretrained=True, num_classes=5)
    assert tuned.num_classes == 5 and tuned.class_names is None
    assert torch.equal(tuned.stem[0].weight, trained.stem[0].weight)


def test_a_registered_name_with_pretrained_says_how_to_get_weights():
    with pytest.raises(NoPretrainedWeightsError) as error:
        effvid.create_model("vmf_xxs", pretrained=True)
    assert "ships no trained weights" in _one_line(error)
    assert "effvid save-pretrained" in str(error.value)


def test_a_folder_is_loaded_only_into_its_model_and_class_count(tmp_path):
    _saved(tmp_path / "m")
    with pytest.raises(CheckpointError) as error:
        effvid.load_model("vmf_xs", tmp_path / "m")
    assert "holds a vmf_xxs model, not vmf_xs" in _one_line(error)
    with pytest.raises(CheckpointError) as error:
        effvid.load_checkpoint(effvid.create_model("vmf_xxs", num_classes=5), tmp_path / "m")
    assert "3 classes, not 5" in _one_line(error)
    config_path = tmp_path / "m" / CONFIG_FILE
    config = json.loads(config_path.read_text())
    config.update(num_classes=4, class_names=["a", "b", "c", "d"])
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as error:
        effvid.create_model(str(tmp_path / "m"), pretrained=True)
    assert "config.json says 4 classes and its weights have 3" in _one_line(error)


def test_fine_tuning_from_a_folder_loads_all_but_the_classifier(tmp_path):
    trained = _saved(tmp_path / "m")
    model = effvid.create_model("vmf_xxs", num_classes=5)  # what a recipe's model.checkpoint does
    report = effvid.load_checkpoint(model, tmp_path / "m", strict=False)
    assert "3 classes and the model 5" in report.new_classifier
    assert torch.equal(model.stem[0].weight, trained.stem[0].weight)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda folder: (folder / CONFIG_FILE).unlink(), "not an effvid model folder (no config"),
        (lambda folder: (folder / WEIGHTS_FILE).unlink(), "model.safetensors is missing"),
        (lambda folder: (folder / CONFIG_FILE).write_text("{not json"), "is not valid JSON"),
        (lambda folder: _edit(folder, format_version=2), "format_version 2, newer than"),
        (lambda folder: _edit(folder, library="timm"), "'library' is 'timm'"),
        (lambda folder: _edit(folder, class_names=["a"]), "1 class_names for num_classes 3"),
        (lambda folder: _edit(folder, model_args=[1]), "'model_args' must be an object"),
        (lambda folder: (folder / WEIGHTS_FILE).write_bytes(b"\0" * 9), "not a readable safet"),
    ],
)
def test_a_broken_folder_is_one_line_naming_the_file(tmp_path, change, message):
    _saved(tmp_path / "m")
    change(tmp_path / "m")
    with pytest.raises(CheckpointError) as error:
        effvid.create_model(str(tmp_path / "m"), pretrained=True)
    assert message in _one_line(error)
    assert str(tmp_path / "m") in str(error.value)


def _edit(folder, **changes):
    config = json.loads((folder / CONFIG_FILE).read_text())
    (folder / CONFIG_FILE).write_text(json.dumps({**config, **changes}))


def test_a_run_folder_given_as_a_model_folder_is_pointed_at_its_checkpoint(tmp_path):
    (tmp_path / "best.pth").write_bytes(b"")
    with pytest.raises(CheckpointError) as error:
        effvid.load_model(None, tmp_path)
    assert "looks like a run folder" in _one_line(error) and "save-pretrained" in str(error.value)


def test_writing_never_replaces_a_foreign_folder_and_an_effvid_one_only_when_asked(tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "keep.jpg").write_bytes(b"mine")
    model = effvid.create_model("vmf_xxs", num_classes=3).eval()
    with pytest.raises(CheckpointError, match="not an effvid model folder: effvid never"):
        model.save_pretrained(foreign)
    assert [p.name for p in foreign.iterdir()] == ["keep.jpg"]
    (tmp_path / "empty").mkdir()
    model.save_pretrained(tmp_path / "empty")  # an empty folder holds nothing to lose
    _saved(tmp_path / "m")
    before = (tmp_path / "m" / WEIGHTS_FILE).read_bytes()
    with pytest.raises(CheckpointError, match="give --overwrite"):
        model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / WEIGHTS_FILE).read_bytes() == before
    model.save_pretrained(tmp_path / "m", overwrite=True)
    assert read_model_folder(tmp_path / "m").metadata.class_names is None
    assert (tmp_path / "m" / WEIGHTS_FILE).read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "m", "photos"]  # no leftovers


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import effvid.models.pretrained as pretrained

    def broken(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(pretrained, "save_file", broken)
    with pytest.raises(OSError, match="No space left"):
        _saved(tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_class_names_must_match_the_outputs(tmp_path):
    model = effvid.create_model("vmf_xxs", num_classes=3)
    with pytest.raises(CheckpointError, match="2 class names for a model of 3 classes"):
        model.save_pretrained(tmp_path / "m", class_names=["a", "b"])
    with pytest.raises(CheckpointError, match="needs a registered effvid model"):
        effvid.models.pretrained.save_model_folder(torch.nn.Linear(2, 2), tmp_path / "m")
