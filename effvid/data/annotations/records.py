"""What every annotation reader produces, and the parsing helpers they share.

A reader turns a dataset's own annotation files into a `VideoList`: one `VideoRecord` per video
found on disk, the class names in label order, and the listed videos that are missing. Every error
in an annotation file is an `AnnotationError` that names the file and the line.
"""

import difflib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from effvid.data.decoding import VIDEO_EXTENSIONS
from effvid.errors import EffvidError


class AnnotationError(EffvidError, ValueError):
    """A malformed annotation: `file:line: what is wrong`."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset: an encoded file or a frame folder, its label (-1 if unlabelled)."""

    path: Path
    label: int
    video_id: str


@dataclass
class VideoList:
    """The videos of one split, with `classes[label]` naming each label."""

    records: list[VideoRecord]
    classes: list[str]
    source: str
    missing: list[str] = field(default_factory=list)

    def audit(self) -> str:
        """E.g. `train.csv: 1000 videos listed, 987 found, 13 missing`."""
        listed = len(self.records) + len(self.missing)
        return (
            f"{self.source}: {listed} videos listed, {len(self.records)} found, "
            f"{len(self.missing)} missing"
        )


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise AnnotationError(path, None, f"cannot read ({error})") from None


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped text) of each non-blank line; an unreadable file: AnnotationError."""
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


_SPACE = re.compile(r"\s*")
_TOO_DEEP = "JSON nested too deeply to be an annotation"


def read_json_array(path: str | Path) -> Iterator[tuple[int, object]]:
    """(line number, item) for each item of a JSON file holding one array."""
    text = _read_text(path)
    decoder = json.JSONDecoder()
    line, counted = 1, 0  # line number at position `counted`, advanced as the items go by

    def line_at(position: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, position)
        counted = position
        return line

    position = _SPACE.match(text, 0).end()
    if text[position : position + 1] != "[":
        raise AnnotationError(path, line_at(position), "expected a JSON array")
    position = _SPACE.match(text, position + 1).end()
    while text[position : position + 1] != "]":
        try:
            item, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise AnnotationError(path, error.lineno, f"invalid JSON ({error.msg})") from None
        except RecursionError:
            raise AnnotationError(path, line_at(position), _TOO_DEEP) from None
        yield line_at(position), item
        position = _SPACE.match(text, end).end()
        if text[position : position + 1] == ",":
            position = _SPACE.match(text, position + 1).end()
        elif text[position : position + 1] != "]":
            raise AnnotationError(path, line_at(position), "expected ',' or ']'")


def read_json_object(path: str | Path) -> dict:
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise AnnotationError(path, error.lineno, f"invalid JSON ({error.msg})") from None
    except RecursionError:
        raise AnnotationError(path, None, _TOO_DEEP) from None
    if not isinstance(data, dict):
        raise AnnotationError(path, 1, "expected a JSON object")
    return data


class ClassNames:
    """Class names in label order, with the look-ups and checks every reader needs."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self._labels = {name: label for label, name in enumerate(self.names)}

    def label(self, name: str, path: str | Path, line: int) -> int:
        """The label of class `name`; an unknown name is an AnnotationError naming close ones."""
        if name in self._labels:
            return self._labels[name]
        close = difflib.get_close_matches(name, self.names, n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise AnnotationError(path, line, f"unknown class {name!r}{hint}")

    def check(self, label: int, path: str | Path, line: int) -> int:
        """`label` itself if it is in range, else an AnnotationError."""
        if not 0 <= label < len(self.names):
            raise AnnotationError(
                path, line, f"label {label} out of range 0..{len(self.names) - 1}"
            )
        return label


def index_videos(root: str | Path) -> dict[str, Path]:
    """Video file name stem (or frame folder name) -> path, for everything below `root`."""
    found: dict[str, Path] = {}
    for folder, subfolders, names in os.walk(root):
        for name in names:
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in VIDEO_EXTENSIONS:
                found.setdefault(stem, Path(folder, name))
        for name in subfolders:
            found.setdefault(name, Path(folder, name))
    return found


def existing_video(path: Path) -> Path | None:
    """`path`, or else the frame folder of the same name without the suffix, if either exists."""
    for candidate in (path, path.with_suffix("")):
        if candidate.exists():
            return candidate
    return None


def make_video_list(
    entries: Sequence[tuple[Path | None, int, str]], classes: Sequence[str], source: str | Path
) -> VideoList:
    """A VideoList from (path or None when not found, label, video id) entries."""
    records = [VideoRecord(path, label, video_id) for path, label, video_id in entries if path]
    missing = [video_id for path, _, video_id in entries if path is None]
    return VideoList(records, list(classes), str(source), missing)
