"""Each annotation reader on small files in the format the dataset ships, good and malformed.

Readers only look for the video files, so empty files stand in for videos here.
"""

import json
import re
from pathlib import Path

import pytest

from effvid.data import (
    AnnotationError,
    load_annotations,
    read_classes_file,
    read_folder_tree,
    read_hmdb51,
    read_kinetics,
    read_list_file,
    read_ssv2,
    read_ucf101,
)


def _touch(root: Path, *relative: str) -> None:
    for name in relative:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


KINETICS_CSV = """label,youtube_id,time_start,time_end,split,is_cc
abseiling,--07WQ2iBlw,1,11,train,0
"passing American football (in game)",-0Brr-4Aia0,5,15,train,0
abseiling,zzmissing00,20,30,train,1
"""


def test_kinetics_csv_and_missing_video_audit(tmp_path):
    (tmp_path / "train.csv").write_text(KINETICS_CSV)
    _touch(
        tmp_path,
        "videos/abseiling/--07WQ2iBlw_000001_000011.mp4",
        "videos/passing American football (in game)/-0Brr-4Aia0_000005_000015.mp4",
    )
    videos = read_kinetics(tmp_path / "train.csv", tmp_path / "videos")
    assert videos.classes == ["abseiling", "passing American football (in game)"]
    assert [(r.video_id, r.label) for r in videos.records] == [
        ("--07WQ2iBlw_000001_000011", 0),
        ("-0Brr-4Aia0_000005_000015", 1),
    ]
    assert videos.missing == ["zzmissing00_000020_000030"]
    assert videos.audit().endswith("3 videos listed, 2 found, 1 missing")


def test_kinetics_test_csv_without_labels_and_given_classes(tmp_path):
    (tmp_path / "test.csv").write_text("youtube_id,time_start,time_end,split\nabc,0,10,test\n")
    _touch(tmp_path, "abc.mp4")  # some mirrors name clips by YouTube id only
    videos = read_kinetics(tmp_path / "test.csv", classes=["a", "b"])
    assert [(r.path.name, r.label) for r in videos.records] == [("abc.mp4", -1)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("abseiling,x,one,11,train,0", r"val.csv:3: time_start and time_end must be numbers"),
        ("abseling,x,1,11,train,0", r"val.csv:3: unknown class 'abseling' \(did you mean 'abse"),
        ("abseiling,x,1", r"val.csv:3: expected 6 fields"),
    ],
)
def test_kinetics_errors_name_file_and_line(tmp_path, line, message):
    csv_path = tmp_path / "val.csv"
    csv_path.write_text(KINETICS_CSV.splitlines()[0] + "\nabseiling,y,1,11,val,0\n" + line + "\n")
    with pytest.raises(AnnotationError, match=message):
        read_kinetics(csv_path, classes=["abseiling", "zumba"])


def test_kinetics_header_is_checked(tmp_path):
    (tmp_path / "bad.csv").write_text("label,video,start,end\nabseiling,x,1,11\n")
    with pytest.raises(AnnotationError, match=r"bad\.csv:1: no 'youtube_id' column"):
        read_kinetics(tmp_path / "bad.csv")


SSV2_LABELS = {
    "Pushing something from left to right": "1",
    "Holding something next to something": "0",
}
SSV2_TRAIN = [
    {
        "id": "78687",
        "label": "holding potato next to vicks vaporub bottle",
        "template": "Holding [something] next to [something]",
        "placeholders": ["potato", "vicks vaporub bottle"],
    },
    {
        "id": "42326",
        "label": "pushing a cup from left to right",
        "template": "Pushing [something] from left to right",
        "placeholders": ["a cup"],
    },
    {"id": "99999", "template": "Pushing [something] from left to right", "placeholders": []},
]


def _write_ssv2(root: Path, entries: list) -> Path:
    (root / "labels.json").write_text(json.dumps(SSV2_LABELS, indent=4))
    path = root / "train.json"
    path.write_text(json.dumps(entries, indent=4))
    return path


def test_ssv2_templates_and_ids(tmp_path):
    _touch(tmp_path, "videos/78687.webm")
    (tmp_path / "videos/42326").mkdir()  # a frame folder counts as a video too
    videos = read_ssv2(_write_ssv2(tmp_path, SSV2_TRAIN), tmp_path / "videos")
    assert videos.classes == [
        "Holding something next to something",
        "Pushing something from left to right",
    ]
    assert [(r.video_id, r.label, r.path.name) for r in videos.records] == [
        ("78687", 0, "78687.webm"),
        ("42326", 1, "42326"),
    ]
    assert videos.missing == ["99999"]


def test_ssv2_test_split_without_templates(tmp_path):
    _touch(tmp_path, "1.webm")
    path = _write_ssv2(tmp_path, [{"id": "1"}])
    assert [r.label for r in read_ssv2(path).records] == [-1]


def test_ssv2_errors_name_the_line_of_the_entry(tmp_path):
    entries = [*SSV2_TRAIN, {"id": "5", "template": "Pulling [something] out"}]
    path = _write_ssv2(tmp_path, entries)
    lines = path.read_text().splitlines()
    line = next(
        i for i, text in enumerate(lines) if '"id": "5"' in text
    )  # its "{" is the line above
    with pytest.raises(AnnotationError, match=rf"train.json:{line}: unknown class 'Pulling"):
        read_ssv2(path)
    path.write_text('[\n  {"id": "1"},\n  {"label": "no id"}\n]')
    with pytest.raises(AnnotationError, match=r"train\.json:3: expected an object with an 'id'"):
        read_ssv2(path)
    path.write_text('[\n  {"id": "1"},\n  {"id": "2",}\n]')
    with pytest.raises(AnnotationError, match=r"train\.json:3: invalid JSON"):
        read_ssv2(path)


def _write_ucf101(root: Path) -> Path:
    splits = root / "ucfTrainTestlist"
    splits.mkdir()
    (splits / "classInd.txt").write_text("1 ApplyEyeMakeup\r\n2 Archery\r\n")
    (splits / "trainlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nArchery/v_Archery_g08_c02.avi 2\r\n"
    )
    (splits / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\r\n")
    _touch(
        root / "UCF-101",
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi",
        "Archery/v_Archery_g08_c02.avi",
        "Archery/v_Archery_g01_c01.avi",
    )
    return splits


def test_ucf101_split_files(tmp_path):
    splits = _write_ucf101(tmp_path)
    train = read_ucf101(splits / "trainlist01.txt", tmp_path / "UCF-101")
    assert train.classes == ["ApplyEyeMakeup", "Archery"]
    assert [(r.video_id, r.label) for r in train.records] == [
        ("v_ApplyEyeMakeup_g08_c01", 0),
        ("v_Archery_g08_c02", 1),
    ]
    test = read_ucf101(splits / "testlist01.txt", tmp_path / "UCF-101")
    assert [r.label for r in test.records] == [1]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Archery/v_Archery_g08_c02.avi 3", "trainlist01.txt:2: label 2 out of range 0..1"),
        ("Archery/v_Archery_g08_c02.avi 1", "trainlist01.txt:2: label 1 is not the class of"),
        ("Archery/v_Archery_g08_c02.avi x", "trainlist01.txt:2: label 'x' is not a number"),
        ("Archer/v_Archer_g08_c02.avi", r"trainlist01.txt:2: unknown class 'Archer' \(did you"),
        ("v_Archery_g08_c02.avi 2", "trainlist01.txt:2: expected '<class>/<video> \\[<label>\\]'"),
    ],
)
def test_ucf101_errors_name_file_and_line(tmp_path, line, message):
    splits = _write_ucf101(tmp_path)
    (splits / "trainlist01.txt").write_text(
        f"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n{line}\n"
    )
    with pytest.raises(AnnotationError, match=message):
        read_ucf101(splits / "trainlist01.txt", tmp_path / "UCF-101")


def test_hmdb51_split_files(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a_brush.avi 1 \nb_brush.avi 2 \nc.avi 0 \n")
    (splits / "cartwheel_test_split1.txt").write_text("d_wheel.avi 1 \n")
    (splits / "cartwheel_test_split2.txt").write_text("d_wheel.avi 2 \n")
    _touch(tmp_path / "hmdb51", "brush_hair/a_brush.avi", "brush_hair/b_brush.avi")
    (tmp_path / "hmdb51/cartwheel/d_wheel").mkdir(parents=True)  # a frame folder
    train = read_hmdb51(splits, tmp_path / "hmdb51", split=1, subset="train")
    assert train.classes == ["brush_hair", "cartwheel"]
    assert [(r.video_id, r.label) for r in train.records] == [("a_brush", 0), ("d_wheel", 1)]
    test = read_hmdb51(splits, tmp_path / "hmdb51", split=1, subset="test")
    assert [r.video_id for r in test.records] == ["b_brush"]
    (splits / "cartwheel_test_split1.txt").write_text("d_wheel.avi 1\nd_wheel.avi 3\n")
    with pytest.raises(AnnotationError, match=r"cartwheel_test_split1\.txt:2: expected"):
        read_hmdb51(splits, tmp_path / "hmdb51")


def test_list_file_separators_names_and_spaces(tmp_path):
    _touch(tmp_path, "clips/a b.mp4", "clips/c.mp4", "clips/d.webm")
    (tmp_path / "train.txt").write_text("clips/a b.mp4 1\nclips/c.mp4,0\n\nclips/d.webm\t2\n")
    videos = read_list_file(tmp_path / "train.txt", classes=["jump", "run", "swim"])
    assert [(r.path.name, r.label) for r in videos.records] == [
        ("a b.mp4", 1),
        ("c.mp4", 0),
        ("d.webm", 2),
    ]
    (tmp_path / "named.txt").write_text("clips/c.mp4 run\nclips/d.webm jump\n")
    videos = read_list_file(tmp_path / "named.txt")
    assert videos.classes == ["jump", "run"] and [r.label for r in videos.records] == [1, 0]
    (tmp_path / "numbers.txt").write_text("clips/c.mp4 1\nclips/d.webm 0\n")
    assert read_list_file(tmp_path / "numbers.txt").classes == ["0", "1"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        # a typo among 0..2 would make a 100-class model; the outlier's line is named
        (
            ["0", "1", "99", "2"],
            r"list.txt:3: label 99: without a classes file integer labels "
            r"must run from 0 to N-1 with every label used \(labels 0..2 are all used\); a typo\? "
            r"A classes file \(data.classes\) declares classes that have no videos",
        ),
        (["1", "2", "3"], r"list.txt:1: label 1: .* \(no video has label 0\)"),
        (["0", "2"], r"list.txt:2: label 2: .* \(labels 0..0 are all used\)"),
        # integers and names mixed would map to the wrong classes
        (["0", "run", "1"], r"list.txt:2: class name 'run' in a file of integer labels"),
        (
            ["5", "7", "run"],
            r"list.txt:3: class name 'run' in a file of integer labels \(line 1: "
            r"'5'\); use one kind of label, or give a classes file",
        ),
    ],
)
def test_list_file_without_classes_refuses_labels_it_cannot_trust(tmp_path, labels, message):
    _touch(tmp_path, "a.mp4")
    (tmp_path / "list.txt").write_text("".join(f"a.mp4 {label}\n" for label in labels))
    with pytest.raises(AnnotationError, match=message):
        read_list_file(tmp_path / "list.txt")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("clips/c.mp4 5", "list.txt:2: label 5 out of range 0..2"),
        ("clips/c.mp4 -1", "list.txt:2: label -1 out of range 0..2"),
        ("clips/c.mp4 swimm", r"list.txt:2: unknown class 'swimm' \(did you mean 'swim'\?\)"),
        ("clips/c.mp4", "list.txt:2: expected '<path> <label>' or '<path>,<label>'"),
    ],
)
def test_list_file_errors_name_file_and_line(tmp_path, line, message):
    (tmp_path / "list.txt").write_text(f"clips/a.mp4 0\n{line}\n")
    with pytest.raises(AnnotationError, match=message):
        read_list_file(tmp_path / "list.txt", classes=["jump", "run", "swim"])


def test_missing_annotation_file_is_an_annotation_error(tmp_path):
    with pytest.raises(AnnotationError, match=r"nothere\.txt: cannot read"):
        read_list_file(tmp_path / "nothere.txt")


def test_folder_tree(tmp_path):
    _touch(tmp_path, "run/x.mp4", "run/more/y.avi", "jump/z.mkv", "jump/frames/img_00001.jpg")
    _touch(tmp_path, "jump/readme.txt")
    videos = read_folder_tree(tmp_path)
    assert videos.classes == ["jump", "run"]
    assert sorted((r.video_id, r.label) for r in videos.records) == [
        ("jump/frames", 0),
        ("jump/z", 0),
        ("run/more/y", 1),
        ("run/x", 1),
    ]


def test_load_annotations_knows_the_formats_by_name(tmp_path):
    (tmp_path / "train.csv").write_text(KINETICS_CSV)
    assert load_annotations(tmp_path / "train.csv").source.endswith("train.csv")
    assert len(load_annotations(tmp_path / "train.csv").missing) == 3
    ssv2 = _write_ssv2(tmp_path, SSV2_TRAIN)
    assert len(load_annotations(ssv2).missing) == 3
    splits = _write_ucf101(tmp_path)
    assert len(load_annotations(splits / "testlist01.txt", tmp_path / "UCF-101").records) == 1
    _touch(tmp_path, "tree/a/1.mp4")
    assert load_annotations(tmp_path / "tree").classes == ["a"]


def test_class_folders_are_ordered_by_code_point_whatever_their_case(tmp_path):
    """The label of a class folder is its place in the plain sorted order of the names
    (upper case first), the order every other reader and every checkpoint uses: sorting by
    lower case (or by the OS's listing) would silently give other labels to a trained model."""
    _touch(tmp_path, "apple/1.mp4", "Zebra/1.mp4", "Mango/1.mp4", "banana/1.mp4")
    videos = read_folder_tree(tmp_path)
    assert videos.classes == ["Mango", "Zebra", "apple", "banana"]
    assert {r.video_id: r.label for r in videos.records} == {
        "Mango/1": 0,
        "Zebra/1": 1,
        "apple/1": 2,
        "banana/1": 3,
    }
    assert load_annotations(tmp_path).classes == videos.classes


def test_a_classes_file_gives_the_names_in_label_order(tmp_path):
    (tmp_path / "classes.txt").write_text("swim\njump\n\nrun\n")
    assert read_classes_file(tmp_path / "classes.txt") == ["swim", "jump", "run"]
    _touch(tmp_path, "a.mp4", "b.mp4", "c.mp4")
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 2\nc.mp4 1\n")
    assert read_list_file(tmp_path / "list.txt").classes == ["0", "1", "2"]


def test_kinetics_videos_are_looked_for_under_the_root_given(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "val.csv").write_text(KINETICS_CSV)
    _touch(tmp_path, "lists/--07WQ2iBlw.mp4", "clips/--07WQ2iBlw_000001_000011.mp4")
    videos = read_kinetics(tmp_path / "lists" / "val.csv", tmp_path / "clips")
    assert [r.path for r in videos.records] == [tmp_path / "clips/--07WQ2iBlw_000001_000011.mp4"]
    assert videos.source == str(tmp_path / "lists" / "val.csv")


def test_kinetics_csv_with_a_byte_order_mark_and_a_line_break_in_a_quoted_label(tmp_path):
    text = 'label,youtube_id,time_start,time_end,split\r\n"tai\r\nchi",abc,1,11,train\r\n'
    (tmp_path / "train.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # as Excel saves it
    _touch(tmp_path, "abc_000001_000011.mp4")
    videos = read_kinetics(tmp_path / "train.csv")
    assert videos.classes == ["tai\r\nchi"] and [r.label for r in videos.records] == [0]


def test_kinetics_test_csv_without_labels_or_classes_has_no_classes(tmp_path):
    (tmp_path / "test.csv").write_text("youtube_id,time_start,time_end,split\nabc,0,10,test\n")
    videos = read_kinetics(tmp_path / "test.csv")
    assert videos.classes == [] and videos.missing == ["abc_000000_000010"]


def test_unreadable_annotations_and_folders_are_named(tmp_path):
    here = re.escape(str(tmp_path))
    with pytest.raises(AnnotationError, match=rf"^{here}/none\.csv: cannot read \("):
        read_kinetics(tmp_path / "none.csv")
    (tmp_path / "file.txt").touch()
    with pytest.raises(AnnotationError, match=rf"^{here}/file\.txt: not a folder$"):
        read_folder_tree(tmp_path / "file.txt")
    _touch(tmp_path, "tree/run/a.mp4", "tree/dive/b.mp4", "tree/fly/c.mp4")
    message = r"tree: class folders \['dive', 'fly'\] are not among the 2 classes given$"
    with pytest.raises(AnnotationError, match=f"^{here}/{message}"):
        read_folder_tree(tmp_path / "tree", classes=["run", "jump"])
    videos = read_folder_tree(tmp_path / "tree", classes=["run", "jump", "dive", "fly"])
    assert videos.source == str(tmp_path / "tree")
    assert [(r.path, r.label) for r in videos.records] == [
        (tmp_path / "tree/dive/b.mp4", 2),
        (tmp_path / "tree/fly/c.mp4", 3),
        (tmp_path / "tree/run/a.mp4", 0),
    ]


def test_list_file_videos_are_looked_for_under_the_root_given(tmp_path):
    _touch(tmp_path, "lists/a.mp4", "clips/a.mp4")
    (tmp_path / "lists" / "val.txt").write_text("a.mp4 0\n")
    videos = read_list_file(tmp_path / "lists" / "val.txt", tmp_path / "clips", classes=["x"])
    assert [r.path for r in videos.records] == [tmp_path / "clips" / "a.mp4"]
    assert videos.source == str(tmp_path / "lists" / "val.txt")
