"""Predictions of a collection as files that say what made them, are always valid, and can be
resumed.

The first line is the file's provenance (`effvid.inference.outputs`: the model, its weights'
digest, class names, preprocessing and the options that shape the records): in JSON lines the
object itself (`{"effvid": "predictions", ...}`), in CSV `# ` and the object, then the column
names. Then one record per video, written (and flushed) as soon as the video is done, by the
standard writers: JSON lines (`.jsonl`: `{"video": ..., "top": [{"label", "score"}, ...]}`, or
with a timeline `{"video": ..., "timeline": [{"start", "end", "top": [...]}, ...]}`) or CSV
(`.csv`, the csv module: `video,start,end,rank,label,score`, one row per label of the top k,
per window with a timeline).

A rerun reads what is there: a file that effvid did not write, or that another model, weights
or options made, is refused (`--overwrite` replaces one of effvid's own); what a kill cut short
(a partial last line, or the possibly partial rows of the last video of a CSV) is cut off; the
videos recorded are skipped. A line that is not what effvid wrote is reported as `file:line`.

    sink = PredictionFile("labels.jsonl", provenance)
    record = RecordBuilder(video, k=5, class_names=names, timeline=False)
    record.add(logits, spans)          # (n, classes) and n spans, any number of times
    sink.write(record.record())
"""

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from effvid.errors import InputError
from effvid.inference.outputs import (
    CorruptOutputError,
    check_continuation,
    corrupt_line,
    foreign_error,
    json_lines,
    legacy_error,
)

FORMATS = (".jsonl", ".csv")
CSV_FIELDS = ["video", "start", "end", "rank", "label", "score"]
KIND = "predictions"
WAY_OUT = "write to another --output, or add --overwrite to replace it"
_HEADER_START = {".jsonl": '{"effvid": "predictions"', ".csv": '# {"effvid": "predictions"'}
_LONGEST_HEADER = 1 << 24  # bytes; a first line longer than this is not effvid's


def top_k(probabilities: torch.Tensor, k: int, class_names: Sequence[str]) -> list[dict]:
    best = probabilities.topk(min(k, probabilities.numel()))
    return [
        {"label": class_names[i] if i < len(class_names) else str(i), "score": round(float(p), 5)}
        for p, i in zip(best.values, best.indices.tolist(), strict=True)
    ]


class RecordBuilder:
    """One video's record, built from its clips' logits as they come, chunk by chunk: the mean
    of the clips' probabilities (a running sum), or a timeline (each window kept as its top k
    only), so that what a video holds in memory does not grow with its clips' tensors."""

    def __init__(self, video: str, *, k: int, class_names: Sequence[str], timeline: bool) -> None:
        self.video = video
        self.k = k
        self.class_names = class_names
        self.timeline = timeline
        self.windows: list[dict] = []
        self.total: torch.Tensor | None = None  # (classes,) summed probabilities
        self.count = 0

    def add(self, logits: torch.Tensor, spans: Sequence[tuple[float, float]]) -> None:
        """logits (n, classes) of the next n clips, whose spans (seconds) are `spans`."""
        probabilities = logits.softmax(dim=-1)
        if self.timeline:
            self.windows += [
                {"start": round(start, 3), "end": round(end, 3),
                 "top": top_k(row, self.k, self.class_names)}
                for (start, end), row in zip(spans, probabilities, strict=True)
            ]  # fmt: skip
            return
        summed = probabilities.sum(dim=0)
        self.total = summed if self.total is None else self.total + summed
        self.count += len(probabilities)

    def record(self) -> dict:
        if self.timeline:
            return {"video": self.video, "timeline": self.windows}
        mean = self.total / self.count
        return {"video": self.video, "top": top_k(mean, self.k, self.class_names)}


def prediction_record(
    video: str,
    logits: torch.Tensor,
    spans: Sequence[tuple[float, float]],
    *,
    k: int,
    class_names: Sequence[str],
    timeline: bool,
) -> dict:
    """One video's record from all its clips' logits (n, classes) at once: the mean
    probabilities of the clips, or a timeline, one entry per clip with its span."""
    builder = RecordBuilder(video, k=k, class_names=class_names, timeline=timeline)
    builder.add(logits, spans)
    return builder.record()


def csv_rows(record: dict) -> list[list]:
    windows = record.get("timeline") or [{"start": "", "end": "", "top": record["top"]}]
    return [
        [record["video"], window["start"], window["end"], rank, entry["label"], entry["score"]]
        for window in windows
        for rank, entry in enumerate(window["top"], start=1)
    ]


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def header_text(suffix: str, provenance: Mapping) -> str:
    """The lines a prediction file begins with: its provenance (and CSV's column names)."""
    line = json.dumps(dict(provenance), ensure_ascii=False)
    return f"{line}\n" if suffix == ".jsonl" else f"# {line}\n{_csv_text([CSV_FIELDS])}"


def record_text(suffix: str, record: dict) -> str:
    """One record as the text it is written as: one line, or all its CSV rows."""
    if suffix == ".jsonl":
        return json.dumps(record, ensure_ascii=False) + "\n"
    return _csv_text(csv_rows(record))


def _checked_suffix(path: Path) -> str:
    if path.suffix not in FORMATS:
        raise InputError(f"--output must end in {' or '.join(FORMATS)}, got {path.name!r}")
    return path.suffix


class _Lines:
    """The complete lines of a file open in binary (up to byte `limit`), decoded, counting
    their numbers and the byte offset after the last one; a last line without its newline (a
    kill cut it short) is never given, and sets `partial`."""

    def __init__(self, path: Path, handle, limit: int | None = None) -> None:
        self.path, self.handle, self.limit = path, handle, limit
        self.number = 0
        self.end = 0
        self.partial = False
        self.exhausted = False

    def __iter__(self) -> "_Lines":
        return self

    def __next__(self) -> str:
        done = self.limit is not None and self.end >= self.limit
        line = b"" if done else self.handle.readline()
        if not line.endswith(b"\n"):
            self.partial = bool(line)
            self.exhausted = True
            raise StopIteration
        self.number += 1
        self.end += len(line)
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            raise corrupt_line(self.path, self.number, "not UTF-8 text") from None

    def numbered(self) -> Iterator[tuple[int, str]]:
        for line in self:
            yield self.number, line


@dataclass
class _Header:
    """What a file's first line says it is: `empty` (absent, empty, or a header a kill cut
    short), `effvid` (with its provenance), `legacy` (an earlier effvid's) or `foreign`."""

    kind: str
    provenance: dict = field(default_factory=dict)


def _read_header(path: Path) -> _Header:
    if not path.exists():
        return _Header("empty")
    if not path.is_file():
        return _Header("foreign")
    if path.stat().st_size == 0:
        return _Header("empty")
    with path.open("rb") as handle:
        raw = handle.readline(_LONGEST_HEADER)
    try:
        first = raw.decode("utf-8")
    except UnicodeDecodeError:
        return _Header("foreign")
    if not first.endswith("\n"):
        partial_header = len(raw) < _LONGEST_HEADER and first.startswith(_HEADER_START[path.suffix])
        return _Header("empty" if partial_header else "foreign")
    if path.suffix == ".csv":
        if first.rstrip("\r\n") == ",".join(CSV_FIELDS):
            return _Header("legacy")
        if not first.startswith("# "):
            return _Header("foreign")
        first = first[2:]
    try:
        value = json.loads(first)
    except ValueError:
        return _Header("foreign")
    if isinstance(value, dict) and value.get("effvid") == KIND:
        return _Header("effvid", value)
    if path.suffix == ".jsonl" and isinstance(value, dict) and "video" in value:
        return _Header("legacy")
    return _Header("foreign")


def read_provenance(path: str | Path) -> dict | None:
    """The provenance a prediction file records on its first line (None if it records none)."""
    header = _read_header(Path(path))
    return header.provenance if header.kind == "effvid" else None


def check_owner(path: str | Path) -> None:
    """ForeignOutputError if `path` is a file that effvid did not write (checked before
    anything, even a lock file, is written beside it)."""
    path = Path(path)
    _checked_suffix(path)
    if _read_header(path).kind == "foreign":
        raise foreign_error(path, "a prediction file", "predict")


def check_prediction_output(
    path: str | Path, provenance: Mapping, *, overwrite: bool = False
) -> bool:
    """May a run of `provenance` write into `path`? Returns whether it holds records to
    continue. ForeignOutputError for a file effvid did not write; OutputMismatchError for one of
    another provenance, unless `overwrite` (then the file is removed: the run starts anew)."""
    path = Path(path)
    check_owner(path)
    header = _read_header(path)
    if header.kind == "empty":
        return False
    if overwrite:
        path.unlink()
        return False
    if header.kind == "legacy":
        raise legacy_error(path, WAY_OUT)
    check_continuation(path, header.provenance, provenance, WAY_OUT)
    return True


def _corrupt(path: Path, number: int, reason: str) -> CorruptOutputError:
    return corrupt_line(path, number, f"not a prediction record ({reason})")


@dataclass
class _Scan:
    """The videos a prediction file holds in full, and the byte offset where what a kill left
    half done begins."""

    videos: list[str]
    complete: int


def _scan_jsonl(path: Path, lines: _Lines) -> _Scan:
    videos = []
    for number, record in json_lines(path, lines.numbered()):
        labelled = "top" in record or "timeline" in record
        if not isinstance(record.get("video"), str) or not labelled:
            raise _corrupt(path, number, "no video with its top labels or timeline")
        videos.append(record["video"])
    return _Scan(videos, lines.end)  # a partial last line does not count


def _scan_csv(path: Path, lines: _Lines) -> _Scan:
    columns = next(lines, None)
    if columns is not None and columns.rstrip("\r\n") != ",".join(CSV_FIELDS):
        raise _corrupt(path, lines.number, f"the columns must be {','.join(CSV_FIELDS)}")
    videos: list[str] = []
    last_start = before = lines.end  # where the last video's rows begin
    reader = csv.reader(lines)
    try:
        for row in reader:
            if len(row) != len(CSV_FIELDS):
                raise _corrupt(path, lines.number, f"{len(row)} fields, not {len(CSV_FIELDS)}")
            if not videos or row[0] != videos[-1]:
                videos.append(row[0])
                last_start = before
            before = lines.end
    except csv.Error as error:
        if not lines.exhausted:  # not the end of the file cutting a quoted field short
            raise _corrupt(path, lines.number, str(error)) from None
        lines.partial = True
    if lines.partial and videos:  # the last video may have lost rows
        videos.pop()
        return _Scan(videos, last_start)
    return _Scan(videos, before if lines.partial else lines.end)


def _scan(path: Path) -> _Scan:
    """The records of an effvid prediction file (after its header), checked line by line."""
    with path.open("rb") as handle:
        lines = _Lines(path, handle)
        if next(lines, None) is None:  # no complete header: a kill struck while writing it
            return _Scan([], 0)
        if path.suffix == ".jsonl":
            return _scan_jsonl(path, lines)
        return _scan_csv(path, lines)


class PredictionFile:
    """Appends records to a `.jsonl` or `.csv` file of `provenance`; `done` are the videos
    already in it. Refuses a file it may not continue (`check_prediction_output`)."""

    def __init__(self, path: str | Path, provenance: Mapping, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.suffix = _checked_suffix(self.path)
        check_prediction_output(self.path, provenance, overwrite=overwrite)
        self.done: set[str] = set(self._repair())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.handle = self.path.open("a", newline="", encoding="utf-8")
        if new:
            self.handle.write(header_text(self.suffix, provenance))
            self.handle.flush()

    def _repair(self) -> list[str]:
        """The videos recorded in full, after cutting off what an interrupted run left."""
        if not self.path.exists():
            return []
        scan = _scan(self.path)
        if scan.complete < self.path.stat().st_size:
            os.truncate(self.path, scan.complete)
        return scan.videos

    def write(self, record: dict) -> None:
        self.handle.write(record_text(self.suffix, record))  # one write: all its rows or none
        self.handle.flush()
        self.done.add(record["video"])

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> "PredictionFile":
        return self

    def __exit__(self, *exception) -> None:
        self.close()


def recorded_videos(path: str | Path) -> list[str]:
    """The videos an effvid prediction file holds in full (what a rerun skips)."""
    path = Path(path)
    return _scan(path).videos if read_provenance(path) is not None else []


def iter_records(path: str | Path) -> Iterator[dict]:
    """The complete records of an effvid prediction file (either format), in file order, one
    at a time."""
    path = Path(path)
    scan = _scan(path)
    with path.open("rb") as handle:
        lines = _Lines(path, handle, limit=scan.complete)
        next(lines, None)  # the provenance
        if path.suffix == ".jsonl":
            for _, record in json_lines(path, lines.numbered()):
                yield record
            return
        next(lines, None)  # the column names
        record: dict | None = None
        for row in csv.DictReader(lines, fieldnames=CSV_FIELDS):
            if record is not None and record["video"] != row["video"]:
                yield record
                record = None
            record = record or {"video": row["video"]}
            _add_row(record, row)
        if record is not None:
            yield record


def _add_row(record: dict, row: dict) -> None:
    entry = {"label": row["label"], "score": float(row["score"])}
    if row["start"] == "":
        record.setdefault("top", []).append(entry)
        return
    windows = record.setdefault("timeline", [])
    span = (float(row["start"]), float(row["end"]))
    if not windows or (windows[-1]["start"], windows[-1]["end"]) != span:
        windows.append({"start": span[0], "end": span[1], "top": []})
    windows[-1]["top"].append(entry)


def read_records(path: str | Path) -> list[dict]:
    """The records of an effvid prediction file (either format), in file order."""
    return list(iter_records(path))


def concatenate(sources: Sequence[Path], target: Path) -> None:
    """Prediction files of one provenance as one file written to `target`: the first one's
    header, then the complete records of each, as written."""
    with target.open("wb") as merged:
        for place, source in enumerate(sources):
            complete = _scan(source).complete
            with source.open("rb") as handle:
                lines = 1 if source.suffix == ".jsonl" else 2
                header = b"".join(handle.readline() for _ in range(lines))
                if place == 0:
                    merged.write(header)
                left = complete - len(header)
                while left > 0:
                    block = handle.read(min(left, 1 << 20))
                    if not block:
                        break
                    merged.write(block)
                    left -= len(block)
