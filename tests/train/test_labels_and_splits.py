"""Labels are never silently wrong: the training classes are the label space of every split,
missing videos are reported and counted, and a checkpoint of another class count is refused."""

import logging

import pytest
import torch

from effvid.data import AnnotationError, TooManyBadVideos, read_bad_video_report
from effvid.models import create_model, get_model_card
from effvid.models.weights import CheckpointError
from effvid.train import recipe_data
from effvid.train.config import ConfigError, load_config
from effvid.train.evaluate import evaluate_checkpoint
from tests.conftest import tiny_config
from tests.data.videos import write_indexed_video

CLASSES = ("jump", "run", "swim")
CARD = get_model_card("vmf_xxs")


def _tree(root, classes=CLASSES, videos=2):
    for name in classes:
        for index in range(videos):
            write_indexed_video(root / name / f"{index}.mp4", 8)
    return root


def _folder_data(tmp_path, val_classes):
    train = _tree(tmp_path / "train")
    val = _tree(tmp_path / "val", val_classes)
    return load_config(
        {
            "data": {
                "format": "folder",
                "train": str(train),
                "val": str(val),
                "crop_size": 32,
                "short_side": 32,
            }
        }
    )["data"]


def test_a_split_lacking_a_class_keeps_the_training_labels(tmp_path, caplog):
    data = _folder_data(tmp_path, ("jump", "swim"))  # no 'run' videos in val
    classes = recipe_data.read_split(data, "train").classes
    with caplog.at_level(logging.INFO, logger="effvid"):
        val = recipe_data.read_split(data, "val", classes)
    assert val.classes == list(CLASSES)
    assert {record.path.parent.name: record.label for record in val.records} == {
        "jump": 0,
        "swim": 2,  # re-indexed on its own, 'swim' would have become 1
    }
    assert "the val split has no video of 1 training classes: run" in caplog.text


def test_a_split_with_a_class_the_training_set_lacks_is_refused(tmp_path):
    data = _folder_data(tmp_path, ("jump", "run", "swim", "dive"))
    classes = recipe_data.read_split(data, "train").classes
    with pytest.raises(AnnotationError, match=r"class folders \['dive'\] are not among the 3"):
        recipe_data.read_split(data, "val", classes)


def _list_data(tmp_path, listed, fraction):
    for name in listed[:-1]:
        write_indexed_video(tmp_path / name, 8)
    (tmp_path / "train.txt").write_text("".join(f"{name} 0\n" for name in listed))
    return load_config(
        {
            "data": {
                "format": "list",
                "train": str(tmp_path / "train.txt"),
                "root": str(tmp_path),
                "crop_size": 32,
                "short_side": 32,
                "max_bad_fraction": fraction,
            }
        }
    )["data"]


def test_listed_videos_missing_on_disk_are_reported_and_counted(tmp_path, caplog):
    listed = [f"v{i}.mp4" for i in range(10)]  # the last one is never written
    data = _list_data(tmp_path, listed, 0.2)
    videos = recipe_data.read_split(data, "train")
    report = tmp_path / "run" / "bad_videos_train.tsv"
    with caplog.at_level(logging.WARNING, logger="effvid"):
        dataset = recipe_data.train_dataset(data, CARD, videos, report)
    assert "1 of 10 videos listed in" in caplog.text and "are not on disk" in caplog.text
    assert read_bad_video_report(report) == {"v9.mp4": f"not found (listed in {videos.source}, "
                                             "not on disk)"}  # fmt: skip
    assert len(dataset) == 9

    strict = _list_data(tmp_path, listed, 0.05)
    with pytest.raises(TooManyBadVideos, match=r"1 of 10 videos are unreadable or missing"):
        recipe_data.train_dataset(strict, CARD, recipe_data.read_split(strict, "train"))


def test_a_data_root_that_does_not_exist_is_named(tmp_path):
    data = _list_data(tmp_path, ["a.mp4", "b.mp4"], 0.5)
    data["root"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"data.root '.*nowhere' does not exist"):
        recipe_data.read_split(data, "train")


def test_eval_refuses_a_checkpoint_of_another_class_count(tiny_videos, tmp_path):
    path = tmp_path / "ten_classes.pth"
    torch.save(create_model("vmf_xxs", num_classes=4).state_dict(), path)  # no class names
    config = tiny_config(tiny_videos, tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"model has 4 classes and .* has 10"):
        evaluate_checkpoint(config, path, split="val", progress=False)


def test_a_kinetics_split_lacking_a_class_keeps_the_training_labels(tmp_path):
    """The rule of the folder format holds for Kinetics CSVs too: the validation CSV is read in
    the training split's label space, not re-indexed over its own labels."""
    header = "label,youtube_id,time_start,time_end,split\n"
    rows = {"train": [("jump", "aaa"), ("run", "bbb"), ("swim", "ccc")],
            "val": [("jump", "ddd"), ("swim", "eee")]}  # fmt: skip
    for split, entries in rows.items():
        lines = [f"{label},{youtube_id},1,11,{split}\n" for label, youtube_id in entries]
        (tmp_path / f"{split}.csv").write_text(header + "".join(lines))
        for _, youtube_id in entries:
            (tmp_path / f"{youtube_id}_000001_000011.mp4").touch()
    data = load_config(
        {
            "data": {
                "format": "kinetics",
                "train": str(tmp_path / "train.csv"),
                "val": str(tmp_path / "val.csv"),
                "root": str(tmp_path),
                "crop_size": 32,
                "short_side": 32,
            }
        }
    )["data"]
    classes = recipe_data.read_split(data, "train").classes
    assert classes == list(CLASSES)
    val = recipe_data.read_split(data, "val", classes)
    assert val.classes == list(CLASSES)
    assert {record.video_id: record.label for record in val.records} == {
        "ddd_000001_000011": 0,
        "eee_000001_000011": 2,  # re-indexed on its own, 'swim' would have become 1
    }


@pytest.mark.parametrize("fmt", ["folder", "kinetics", "list", "hmdb51"])
def test_data_classes_is_honoured_by_every_format(tmp_path, fmt):
    """A classes file orders the labels whatever the format; it used to be ignored for
    folder-per-class trees, Kinetics CSVs and HMDB51 splits (labels then sorted by name)."""
    order = ["swim", "jump", "run"]
    (tmp_path / "classes.txt").write_text("\n".join(order) + "\n")
    data = {"format": fmt, "classes": str(tmp_path / "classes.txt"), "crop_size": 32,
            "short_side": 32}  # fmt: skip
    if fmt == "folder":
        data["train"] = str(_tree(tmp_path / "train", ("jump", "run")))
    elif fmt == "kinetics":
        (tmp_path / "train.csv").write_text(
            "label,youtube_id,time_start,time_end\njump,aaa,1,11\nrun,bbb,1,11\n"
        )
        for name in ("aaa", "bbb"):
            (tmp_path / f"{name}_000001_000011.mp4").touch()
        data.update(train=str(tmp_path / "train.csv"), root=str(tmp_path))
    elif fmt == "list":
        (tmp_path / "train.txt").write_text("a.mp4 jump\nb.mp4 run\n")
        for name in ("a", "b"):
            (tmp_path / f"{name}.mp4").touch()
        data.update(train=str(tmp_path / "train.txt"), root=str(tmp_path))
    else:
        splits = tmp_path / "splits"
        splits.mkdir()
        for name in ("jump", "run"):
            (splits / f"{name}_test_split1.txt").write_text(f"{name}.avi 1\n")
            (tmp_path / "videos" / name).mkdir(parents=True)
            (tmp_path / "videos" / name / f"{name}.avi").touch()
        data.update(train=str(splits), root=str(tmp_path / "videos"))
    videos = recipe_data.read_split(load_config({"data": data})["data"], "train")
    assert videos.classes == order
    assert {videos.classes[record.label] for record in videos.records} == {"jump", "run"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.root=/data", "data.train=t.txt", "data.val=v.txt"],
         r"data\.train is given, but data\.format is 'demo' .*: set data\.format"),
        (["data.classes=c.txt"], r"data\.classes is given, but data\.format is 'demo'"),
        (["data.format=folder", "data.train=t", "data.root=/videos"],
         r"data\.root is not read by data\.format 'folder'"),
    ],
)  # fmt: skip
def test_a_dataset_path_the_format_does_not_read_is_refused(overrides, message):
    """`effvid train --config demo data.root=... data.train=...` without data.format used to
    train on the generated demo data, silently, while config.yaml recorded the user's paths."""
    with pytest.raises(ConfigError, match=message):
        load_config("demo", overrides)


def test_eval_counts_a_video_listed_twice_once(tiny_videos, tmp_path):
    lines = (tiny_videos / "val5.txt").read_text().splitlines()
    (tmp_path / "twice.txt").write_text("\n".join([*lines, lines[0], lines[3]]) + "\n")
    config = tiny_config(tiny_videos, tmp_path / "run", data__val=str(tmp_path / "twice.txt"))
    checkpoint = tmp_path / "model.pth"
    classes = (tiny_videos / "classes.txt").read_text().split()
    model = create_model("vmf_xxs", num_classes=len(classes))
    torch.save({"model": model.state_dict(), "class_names": classes}, checkpoint)
    results = evaluate_checkpoint(config, checkpoint, split="val", progress=False)
    assert results.metrics()["videos"] == 5


def test_eval_names_the_checkpoint_file_that_does_not_fit_the_model(tiny_videos, tmp_path):
    """The message used to read 'checkpoint a state dict does not fit vmf_xxs'."""
    path = tmp_path / "x3d.pth"
    torch.save(create_model("x3d_xs", num_classes=10).state_dict(), path)
    config = tiny_config(tiny_videos, tmp_path / "run")
    with pytest.raises(CheckpointError, match=rf"^checkpoint {path} does not fit vmf_xxs: "):
        evaluate_checkpoint(config, path, split="val", progress=False)
