"""What every annotation reader produces, and the parsing helpers they share.

A reader turns a dataset's own annotation files into a `VideoList`: one `VideoRecord` per video
found on disk, the class names in label order, and the listed videos that are missing. Every error
in an annotation file is an `AnnotationError` that names the file and the line.

Label spaces follow one set of rules, whatever the format: class names are names, whatever they
look like (a class may be called "3"); a name is given once; a label is never empty; a video
listed twice with one label is one video (reported, counted once), with two labels an error that
names both places.
"""

import difflib
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from effvid.data.decoding import VIDEO_EXTENSIONS
from effvid.errors import EffvidError

logger = logging.getLogger("effvid.data")


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
    repeated: list[str] = field(default_factory=list)  # listed more than once, kept once

    def audit(self) -> str:
        """E.g. `train.csv: 1000 videos listed, 987 found, 13 missing` (and how many were
        listed more than once, when some were)."""
        listed = len(self.records) + len(self.missing)
        repeated = f" ({len(self.repeated)} listed more than once)" if self.repeated else ""
        return (
            f"{self.source}: {listed} videos listed{repeated}, {len(self.records)} found, "
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
INTEGER = re.compile(r"-?\d+")  # a label that looks like a number
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

    @property
    def has_integer_names(self) -> bool:
        """Whether some class is named like a number ("3"): then a label that looks like a
        number is a name, never an index."""
        return any(INTEGER.fullmatch(name) for name in self.names)

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


class Entry(NamedTuple):
    """One listed video, as a reader found it."""

    path: Path | None  # None: listed, not on disk
    label: int
    video_id: str
    file: str  # where it is listed
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def place(self, other: "Entry") -> str:
        """Where this entry is, said from `other`'s file: 'line 3' or 'b.txt:3'."""
        same_file = self.file == other.file and self.line is not None
        return f"line {self.line}" if same_file else self.where


def make_video_list(
    entries: Sequence[Entry], classes: Sequence[str], source: str | Path
) -> VideoList:
    """A VideoList from the entries of one split: a video (its path, or its id when it is not on
    disk) listed more than once is kept once and reported; listed with two labels, it is an
    AnnotationError naming both places."""
    first: dict[Path | str, Entry] = {}
    repeated: list[tuple[Entry, Entry]] = []
    for entry in entries:
        key = entry.path if entry.path is not None else entry.video_id
        earlier = first.setdefault(key, entry)
        if earlier is entry:
            continue
        if earlier.label != entry.label:
            names = [classes[e.label] if 0 <= e.label < len(classes) else str(e.label)
                     for e in (earlier, entry)]  # fmt: skip
            raise AnnotationError(
                entry.file,
                entry.line,
                f"video {entry.video_id!r} is listed again with another label: {names[1]!r} "
                f"here, {names[0]!r} at {earlier.place(entry)}",
            )
        repeated.append((earlier, entry))
    if repeated:
        earlier, again = repeated[0]
        logger.warning(
            "%s: %d videos are listed more than once with the same label, each counted once "
            "(first: %r at %s and %s)",
            source, len(repeated), again.video_id, earlier.where,
            again.place(earlier),
        )  # fmt: skip
    kept = list(first.values())
    records = [VideoRecord(e.path, e.label, e.video_id) for e in kept if e.path is not None]
    missing = [e.video_id for e in kept if e.path is None]
    return VideoList(
        records, list(classes), str(source), missing, [e.video_id for _, e in repeated]
    )
