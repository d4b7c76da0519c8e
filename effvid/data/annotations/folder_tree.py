"""A class-per-folder tree: `root/<class name>/<video file or frame folder>`, classes sorted.

A class is a folder that holds videos: hidden folders (`.ipynb_checkpoints`, `.git`) and folders
without a video are not classes, and what lies inside hidden folders is not a video.
"""

from collections.abc import Sequence
from pathlib import Path

from effvid.data.annotations.records import AnnotationError, VideoList, VideoRecord
from effvid.data.video_files import find_videos


def read_folder_tree(root: str | Path, *, classes: Sequence[str] | None = None) -> VideoList:
    """Every video below each class folder of `root` (nested folders too). `classes` (a classes
    file's, or the training split's) fixes the label of each class name; a folder of videos
    naming another class is an error, and a class without a folder here simply has no videos."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, None, "not a folder")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    videos = {name: find_videos(root / name) for name in folders}
    folders = [name for name in folders if videos[name]]
    if not folders:
        raise AnnotationError(root, None, "no class folder holding videos")
    if classes is None:
        classes = folders
    labels = {name: label for label, name in enumerate(classes)}
    unknown = [name for name in folders if name not in labels]
    if unknown:
        raise AnnotationError(
            root, None, f"class folders {unknown} are not among the {len(classes)} classes given"
        )
    records = [
        VideoRecord(path, labels[name], str(path.relative_to(root).with_suffix("")))
        for name in folders
        for path in videos[name]
    ]
    return VideoList(records, list(classes), str(root))
