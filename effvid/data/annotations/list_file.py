"""Plain list files, one video per line: `path label` or `path,label`, and a classes file.

    videos/jump/0001.mp4 3          label index (0-based) ...
    videos/run/0002.mp4,run         ... or a class name

Paths may contain spaces (the label is the last field) and are relative to `video_root`, by default
the list file's folder. The classes file has one class name per line, in label order, each name
once. A label that names a class is that class; a number that names none is a 0-based index,
unless some class is named like a number (classes "1".."10"): then every label is a name, so that
"10" is class "10", never the 11th class. Without a classes file, the labels of the file define
the classes: class names, sorted; or integers, which must then run from 0 to N-1 with every label
used (a stray `99` among 0..2 is a typo, not a 100-class dataset). Integers and names are never
mixed in one file.
"""

import re
from collections.abc import Sequence
from pathlib import Path

from effvid.data.annotations.records import (
    INTEGER,
    AnnotationError,
    ClassNames,
    Entry,
    VideoList,
    existing_video,
    make_video_list,
    read_lines,
)

_LINE = re.compile(r"(.+?)\s*[,\s]\s*([^,\s]+)")


def read_classes_file(path: str | Path) -> list[str]:
    """Class names in label order, one per line; a name given twice is an AnnotationError
    naming both lines, and so is a file without any name."""
    lines: dict[str, int] = {}
    for line, name in read_lines(path):
        if name in lines:
            raise AnnotationError(path, line, f"class {name!r} is given twice (line {lines[name]})")
        lines[name] = line
    if not lines:
        raise AnnotationError(path, None, "names no class")
    return list(lines)


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
        classes = _inferred_classes(list_path, [(line, token) for line, _, token in rows])
    class_names = ClassNames(classes)
    root = Path(video_root if video_root is not None else Path(list_path).parent)
    entries = []
    names_only = class_names.has_integer_names
    for line, relative, token in rows:
        if INTEGER.fullmatch(token) and not names_only:
            label = class_names.check(int(token), list_path, line)
        else:
            label = class_names.label(token, list_path, line)
        entries.append(
            Entry(existing_video(root / relative), label, relative, str(list_path), line)
        )
    return make_video_list(entries, class_names.names, list_path)


def _inferred_classes(list_path: str | Path, labels: list[tuple[int, str]]) -> list[str]:
    """The classes of a list file without a classes file, from its (line, label) pairs."""
    integers = [(line, label) for line, label in labels if INTEGER.fullmatch(label)]
    if integers and len(integers) < len(labels):
        name = next((line, label) for line, label in labels if not INTEGER.fullmatch(label))
        number = integers[0]
        raise AnnotationError(
            list_path,
            name[0],
            f"class name {name[1]!r} in a file of integer labels (line {number[0]}: "
            f"{number[1]!r}); use one kind of label, or give a classes file",
        )
    if not integers:
        return sorted({label for _, label in labels})
    used = {int(label) for _, label in integers}
    run = 0
    while run in used:
        run += 1
    for line, label in integers:
        if not 0 <= int(label) < run:
            seen = f"labels 0..{run - 1} are all used" if run else "no video has label 0"
            raise AnnotationError(
                list_path,
                line,
                f"label {label}: without a classes file integer labels must run from 0 to N-1 "
                f"with every label used ({seen}); a typo? A classes file (data.classes) "
                "declares classes that have no videos",
            )
    return [str(label) for label in range(run)]
