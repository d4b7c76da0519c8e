"""Plain list files, one video per line: `path label` or `path,label`, and a classes file.

    videos/jump/0001.mp4 3          label index (0-based) ...
    videos/run/0002.mp4,run         ... or a class name

Paths may contain spaces (the label is the last field) and are relative to `video_root`, by default
the list file's folder. The classes file has one class name per line, in label order. Without one,
integer labels name classes "0".."max" and names are sorted.
"""

import re
from collections.abc import Sequence
from pathlib import Path

from effvid.data.annotations.records import (
    AnnotationError,
    ClassNames,
    VideoList,
    existing_video,
    make_video_list,
    read_lines,
)

_LINE = re.compile(r"(.+?)\s*[,\s]\s*([^,\s]+)")
_INTEGER = re.compile(r"-?\d+")


def read_classes_file(path: str | Path) -> list[str]:
    """Class names in label order, one per line."""
    return [text for _, text in read_lines(path)]


def read_list_file(
    list_path: str | Path,
    video_root: str | Path | None = None,
    *,
    classes: Sequence[str] | None = None,
) -> VideoList:
    """Read a list file; labels are checked against `classes` when given."""
    rows = []
    for line, text in read_lines(list_path):
        match = _LINE.fullmatch(text)
        if match is None:
            raise AnnotationError(list_path, line, "expected '<path> <label>' or '<path>,<label>'")
        rows.append((line, *match.groups()))
    if classes is None:
        tokens = [token for _, _, token in rows]
        if all(_INTEGER.fullmatch(token) for token in tokens):
            classes = [str(label) for label in range(max(map(int, tokens), default=-1) + 1)]
        else:
            classes = sorted(set(tokens))
    class_names = ClassNames(classes)
    root = Path(video_root if video_root is not None else Path(list_path).parent)
    entries = []
    for line, relative, token in rows:
        if _INTEGER.fullmatch(token):
            label = class_names.check(int(token), list_path, line)
        else:
            label = class_names.label(token, list_path, line)
        entries.append((existing_video(root / relative), label, relative))
    return make_video_list(entries, class_names.names, list_path)
