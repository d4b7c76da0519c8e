"""A class-per-folder tree: `root/<class name>/<video file or frame folder>`, classes sorted."""

from collections.abc import Sequence
from pathlib import Path

from effvid.data.annotations.records import AnnotationError, VideoList, VideoRecord
from effvid.data.video_files import find_videos


def read_folder_tree(root: str | Path, *, classes: Sequence[str] | None = None) -> VideoList:
    """Every video below each class folder of `root` (nested folders too). `classes` (e.g. the
    training split's) fixes the label of each class name; a folder naming another class is an
    error, and a class without a folder here simply has no videos."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, None, "not a folder")
    folders = sorted(path.name for path in root.iterdir() if path.is_dir())
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
        for path in find_videos(root / name)
    ]
    return VideoList(records, list(classes), str(root))
