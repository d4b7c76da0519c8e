"""A class-per-folder tree: `root/<class name>/<video file or frame folder>`, classes sorted."""

from pathlib import Path

from effvid.data.annotations.records import AnnotationError, VideoList, VideoRecord
from effvid.data.video_files import find_videos


def read_folder_tree(root: str | Path) -> VideoList:
    """Every video below each class folder of `root` (nested folders too)."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(root, None, "not a folder")
    classes = sorted(path.name for path in root.iterdir() if path.is_dir())
    records = [
        VideoRecord(path, label, str(path.relative_to(root).with_suffix("")))
        for label, name in enumerate(classes)
        for path in find_videos(root / name)
    ]
    return VideoList(records, classes, str(root))
