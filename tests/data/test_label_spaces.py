"""Label spaces, the same rules in every format: names are names whatever they look like,
hidden and empty folders are not classes, an empty label is an error with its line, and a video
listed twice is one video (with one label) or an error naming both places (with two).

Readers only look for the video files, so empty files stand in for videos here."""

import logging

import pytest

from effvid.data import (
    AnnotationError,
    read_classes_file,
    read_folder_tree,
    read_hmdb51,
    read_kinetics,
    read_list_file,
    read_ssv2,
    read_ucf101,
)
from effvid.data.video_files import find_videos
from tests.data.test_annotations import _touch


def _labels(videos) -> dict[str, str]:
    return {record.video_id: videos.classes[record.label] for record in videos.records}


def test_classes_named_by_integers_keep_their_names(tmp_path):
    """Classes "1".."10" with labels given by name: "10" is class "10", not the 11th class, and
    "1" is class "1", not the second one."""
    names = [str(n) for n in range(1, 11)]
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    _touch(tmp_path, *(f"v{n}.mp4" for n in names))
    (tmp_path / "train.txt").write_text("".join(f"v{n}.mp4 {n}\n" for n in names))
    videos = read_list_file(
        tmp_path / "train.txt", classes=read_classes_file(tmp_path / "classes.txt")
    )
    assert _labels(videos) == {f"v{n}.mp4": n for n in names}


def test_with_integer_class_names_a_number_that_is_no_name_is_refused(tmp_path):
    _touch(tmp_path, "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 0\n")
    with pytest.raises(AnnotationError, match=r"train\.txt:1: unknown class '0'"):
        read_list_file(tmp_path / "train.txt", classes=["1", "2", "3"])


def test_indices_still_work_with_named_classes(tmp_path):
    _touch(tmp_path, "a.mp4", "b.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 1\nb.mp4 run\n")
    assert _labels(read_list_file(tmp_path / "train.txt", classes=["jump", "run"])) == {
        "a.mp4": "run",
        "b.mp4": "run",
    }


def test_a_class_given_twice_in_a_classes_file_is_refused_with_both_lines(tmp_path):
    (tmp_path / "classes.txt").write_text("jump\nrun\n\njump\n")
    with pytest.raises(
        AnnotationError, match=r"classes\.txt:4: class 'jump' is given twice \(line 1\)"
    ):
        read_classes_file(tmp_path / "classes.txt")


def test_hidden_and_empty_folders_are_not_classes(tmp_path):
    _touch(tmp_path, "jump/a.mp4", "run/b.mp4", ".ipynb_checkpoints/c.mp4", "run/.cache/d.mp4")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").touch()
    videos = read_folder_tree(tmp_path)
    assert videos.classes == ["jump", "run"]
    assert _labels(videos) == {"jump/a": "jump", "run/b": "run"}


def test_hidden_files_and_folders_are_not_videos(tmp_path):
    _touch(tmp_path, "a.mp4", "._a.mp4", ".ipynb_checkpoints/a-checkpoint.mp4")
    assert find_videos(tmp_path) == [tmp_path / "a.mp4"]


def test_a_folder_tree_follows_the_classes_given(tmp_path):
    _touch(tmp_path, "jump/a.mp4", "run/b.mp4")
    videos = read_folder_tree(tmp_path, classes=["swim", "run", "jump"])
    assert videos.classes == ["swim", "run", "jump"]
    assert _labels(videos) == {"jump/a": "jump", "run/b": "run"}


def test_a_kinetics_row_with_an_empty_label_is_refused_with_its_line(tmp_path):
    (tmp_path / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,aaaaaaaaaaa,1,11,train\n"
        ",bbbbbbbbbbb,1,11,train\n"
    )
    with pytest.raises(AnnotationError, match=r"train\.csv:3: the label is empty"):
        read_kinetics(tmp_path / "train.csv")


def test_a_video_listed_twice_with_one_label_is_one_video_and_reported(tmp_path, caplog):
    _touch(tmp_path, "a.mp4", "b.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 run\nb.mp4 jump\n./a.mp4 run\n")
    with caplog.at_level(logging.WARNING, logger="effvid"):
        videos = read_list_file(tmp_path / "train.txt")
    assert [record.video_id for record in videos.records] == ["a.mp4", "b.mp4"]
    assert videos.repeated == ["./a.mp4"]
    assert "listed more than once with the same label, each counted once" in caplog.text
    assert "train.txt:1 and line 3" in caplog.text
    assert "2 videos listed (1 listed more than once), 2 found" in videos.audit()


def test_a_video_listed_twice_with_two_labels_is_refused_naming_both_lines(tmp_path):
    _touch(tmp_path, "a.mp4")
    (tmp_path / "train.txt").write_text("a.mp4 run\n\na.mp4 jump\n")
    with pytest.raises(AnnotationError) as error:
        read_list_file(tmp_path / "train.txt")
    assert str(error.value) == (
        f"{tmp_path / 'train.txt'}:3: video 'a.mp4' is listed again with another label: 'jump' "
        "here, 'run' at line 1"
    )


def test_a_kinetics_clip_listed_twice(tmp_path):
    _touch(tmp_path, "aaaaaaaaaaa_000001_000011.mp4")
    header = "label,youtube_id,time_start,time_end,split\n"
    row = "abseiling,aaaaaaaaaaa,1,11,train\n"
    (tmp_path / "same.csv").write_text(header + row + row)
    assert len(read_kinetics(tmp_path / "same.csv").records) == 1
    (tmp_path / "two.csv").write_text(header + row + row.replace("abseiling", "archery"))
    with pytest.raises(
        AnnotationError, match=r"two\.csv:3: .*'archery' here, 'abseiling' at line 2"
    ):
        read_kinetics(tmp_path / "two.csv")


def test_a_missing_video_listed_twice_is_missing_once(tmp_path):
    (tmp_path / "train.txt").write_text("gone.mp4 run\ngone.mp4 run\n")
    assert read_list_file(tmp_path / "train.txt").missing == ["gone.mp4"]


def test_ssv2_and_ucf101_videos_listed_twice(tmp_path):
    (tmp_path / "labels.json").write_text('{"Pushing something": "0", "Holding something": "1"}')
    _touch(tmp_path, "7.webm")
    item = '{"id": "7", "template": "Pushing [something]"}'
    other = '{"id": "7", "template": "Holding [something]"}'
    (tmp_path / "train.json").write_text(f"[{item},\n{item}]")
    assert len(read_ssv2(tmp_path / "train.json").records) == 1
    (tmp_path / "bad.json").write_text(f"[{item},\n{other}]")
    with pytest.raises(AnnotationError, match=r"bad\.json:2: .*listed again"):
        read_ssv2(tmp_path / "bad.json")

    (tmp_path / "classInd.txt").write_text("1 Jump\n2 Run\n")
    _touch(tmp_path, "Jump/v_1.avi")
    (tmp_path / "trainlist01.txt").write_text("Jump/v_1.avi 1\nJump/v_1.avi 1\n")
    assert len(read_ucf101(tmp_path / "trainlist01.txt", tmp_path).records) == 1


def test_hmdb51_follows_the_classes_given(tmp_path):
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "run_test_split1.txt").write_text("r.avi 1\n")
    (splits / "jump_test_split1.txt").write_text("j.avi 1\n")
    _touch(tmp_path / "videos", "run/r.avi", "jump/j.avi")
    videos = read_hmdb51(splits, tmp_path / "videos", classes=["swim", "run", "jump"])
    assert videos.classes == ["swim", "run", "jump"]
    assert _labels(videos) == {"r": "run", "j": "jump"}
    with pytest.raises(AnnotationError, match=r"split files of classes \['run'\] not among"):
        read_hmdb51(splits, tmp_path / "videos", classes=["jump"])
