"""Annotation readers, one module per format as datasets ship them, each returning a `VideoList`;
`load_annotations` picks the reader from the file name."""

import re
from pathlib import Path

from effvid.data.annotations.folder_tree import read_folder_tree
from effvid.data.annotations.kinetics import read_kinetics
from effvid.data.annotations.list_file import read_list_file
from effvid.data.annotations.records import VideoList
from effvid.data.annotations.ssv2 import read_ssv2
from effvid.data.annotations.ucf101 import read_ucf101

_UCF101_SPLIT = re.compile(r"(train|test)list\d+\.txt")


def load_annotations(path: str | Path, video_root: str | Path | None = None) -> VideoList:
    """Read `path` in the format its name says: a folder (class-per-folder tree), `*.csv`
    (Kinetics), `*.json` (Something-Something V2, `labels.json` beside it), `trainlist0N.txt` /
    `testlist0N.txt` (UCF101, `classInd.txt` beside it), any other file a list file.
    `video_root` defaults to the annotation file's folder. HMDB51 splits: `read_hmdb51`."""
    path = Path(path)
    if path.is_dir():
        return read_folder_tree(path)
    if path.suffix.lower() == ".csv":
        return read_kinetics(path, video_root)
    if path.suffix.lower() == ".json":
        return read_ssv2(path, video_root)
    if _UCF101_SPLIT.fullmatch(path.name):
        return read_ucf101(path, video_root if video_root is not None else path.parent)
    return read_list_file(path, video_root)
