"""Recipes: defaults, files with a base, shipped names, overrides, and clear refusals."""

import json
from pathlib import Path

import pytest
import torch

from effvid.models import create_model, get_model_card
from effvid.train import recipe_data
from effvid.train.config import RECIPES_DIR, ConfigError, load_config, parse_override
from tests.data.videos import write_indexed_video


def test_defaults_recipe_and_overrides_layer_in_order(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train: {lr: 0.01, epochs: 3}\nmodel: {name: x3d_xs}\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\ntrain: {epochs: 5}\n")
    config = load_config(child, ["train.lr=3e-4", "data.randaugment={num_ops: 1, magnitude: 5}"])
    assert config["train"]["epochs"] == 5 and config["train"]["lr"] == 3e-4
    assert config["model"]["name"] == "x3d_xs"
    assert config["data"]["randaugment"] == {"num_ops": 1, "magnitude": 5}
    assert config["train"]["batch_size"] == 16  # a default


SHIPPED = sorted(path.stem for path in RECIPES_DIR.glob("*.yaml"))


def test_every_shipped_recipe_is_tested():
    assert len(SHIPPED) == 9 and "demo" in SHIPPED


def _fake_datasets(root: Path) -> None:
    """Two classes, two tiny videos each, in the layout every shipped recipe names (relative to
    the working folder): Kinetics CSVs, SSv2 JSON, UCF101 and HMDB51 split files."""
    classes = ("jump", "run")
    k400 = root / "kinetics400"
    rows = ["label,youtube_id,time_start,time_end,split"]
    for _c, name in enumerate(classes):
        for v in range(2):
            rows.append(f"{name},{name}{v},1,11,train")
            write_indexed_video(k400 / "videos" / f"{name}{v}_000001_000011.mp4", 12)
    for split in ("train", "val"):
        (k400 / f"{split}.csv").write_text("\n".join(rows) + "\n")
    ssv2 = root / "ssv2"
    templates = ("Pushing something", "Pulling something")
    items = [{"id": f"{c}{v}", "template": t} for c, t in enumerate(templates) for v in range(2)]
    for item in items:
        write_indexed_video(ssv2 / "videos" / f"{item['id']}.mp4", 12)
    (ssv2 / "labels.json").write_text(json.dumps({t: str(c) for c, t in enumerate(templates)}))
    for split in ("train", "validation"):
        (ssv2 / f"{split}.json").write_text(json.dumps(items))
    lists = root / "ucf101" / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text("1 Jump\n2 Run\n")
    names = [f"{name}/v_{name}_g01_c0{v}.avi" for name in ("Jump", "Run") for v in (1, 2)]
    for name in names:
        write_indexed_video(root / "ucf101" / "videos" / name, 12)
    (lists / "trainlist01.txt").write_text("".join(f"{n} {1 + (i >= 2)}\n" for i, n in
                                                   enumerate(names)))  # fmt: skip
    (lists / "testlist01.txt").write_text("".join(f"{n}\n" for n in names))
    splits = root / "hmdb51" / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    for name in classes:
        (splits / f"{name}_test_split1.txt").write_text(f"{name}_a.avi 1\n{name}_b.avi 2\n")
        for video in ("a", "b"):
            write_indexed_video(root / "hmdb51" / "videos" / name / f"{name}_{video}.avi", 12)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_builds_its_model_and_data(name, tmp_path, monkeypatch):
    """Each recipe, on a tiny fake copy of its dataset: the model builds with the recipe's
    arguments and the data's classes, and a training clip and every test view of a video come
    out at the recipe's clip size."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EFFVID_CACHE_DIR", str(tmp_path / "cache"))
    _fake_datasets(tmp_path)
    config = load_config(name)
    checkpoint = config["model"]["checkpoint"]
    if checkpoint:  # fine-tuning recipes start from another run's best model
        assert Path(checkpoint).name == "best.pth" and Path(checkpoint).parts[0] == "runs"
    data = config["data"]
    if data["format"] == "demo":
        data = {**data, "demo_videos": 30, "workers": 0}
        data = recipe_data.demo_data_section(data, progress=False)
    card = get_model_card(config["model"]["name"])
    train_videos = recipe_data.read_split(data, "train")
    val_videos = recipe_data.read_split(data, "val", train_videos.classes)
    with torch.device("meta"):
        model = create_model(
            config["model"]["name"],
            num_classes=len(train_videos.classes),
            **config["model"]["args"],
        )
    assert model.num_classes == len(train_videos.classes) >= 2
    clip, label = recipe_data.train_dataset(data, card, train_videos)[0][:2]
    size = data["crop_size"]
    assert clip.shape == (3, data["num_frames"], size, size) and 0 <= label < model.num_classes
    views = recipe_data.resolve_views(config["eval"], card)
    evaluation = recipe_data.eval_dataset(data, card, val_videos, views)
    assert len(evaluation) == len(val_videos.records) * views.total
    assert evaluation[views.total - 1][0].shape == clip.shape


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.learning_rate=1", "unknown key 'train.learning_rate'"),
        ("train.lrr=1", "did you mean 'train.lr'"),
        ("train.optimizer=adam", "'train.optimizer' must be 'adamw' or 'sgd' \\(got 'adam'\\)"),
        ("train.epochs=0", "'train.epochs' must be greater than or equal to 1"),
        ("lr", "section.key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_override_values_are_yaml():
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a.b=null") == (["a", "b"], None)
    assert parse_override("a.b=text") == (["a", "b"], "text")


def test_model_args_overrides_add_to_each_other_and_to_the_recipe(tmp_path):
    """model.args is free-form (the model checks it), but overrides of its keys still merge:
    each one used to replace the whole mapping, so only the last survived, silently."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model: {name: vmf_xxs, args: {drop_path_rate: 0.1}}\n")
    overrides = ["model.args.global_branch=false", "model.args.stem_channels=9"]
    args = load_config(recipe, overrides)["model"]["args"]
    assert args == {"drop_path_rate": 0.1, "global_branch": False, "stem_channels": 9}
    replaced = load_config(recipe, ["model.args={causal: true}"])["model"]["args"]
    assert replaced == {"drop_path_rate": 0.1, "causal": True}


@pytest.mark.parametrize("lr", [0, 0.0, -1e-3])
def test_a_learning_rate_that_is_not_positive_is_refused_on_its_own(lr):
    # min_lr=0 so that no other rule (min_lr <= lr) refuses it in place of the lr's own bound
    with pytest.raises(ConfigError, match=r"'train.lr' must be greater than 0"):
        load_config(None, [f"train.lr={lr}", "train.min_lr=0"])
    assert load_config(None, ["train.lr=1e-6", "train.min_lr=0"])["train"]["lr"] == 1e-6
