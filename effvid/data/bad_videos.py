"""The bad data policy: an unreadable video is logged, counted and listed, and a run stops only
when more than `max_bad_fraction` of a dataset is unreadable.

The report is a tab-separated file, `path<TAB>reason` per unreadable video, written and read by
the csv module: a path holding a tab, a newline or a quote is quoted, and reads back as it was.
Its first line (`REPORT_HEADER`) says that effvid wrote it: effvid replaces no other file.
DataLoader workers are separate processes: each appends to the same report (one short write per
record, atomic under O_APPEND) and counts what all of them listed, so the fraction is the
dataset's, not a worker's.
"""

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from effvid.data.decoding import VideoDecodeError
from effvid.errors import EffvidError

logger = logging.getLogger("effvid.data")


class TooManyBadVideos(EffvidError, RuntimeError):
    """More of the dataset is unreadable than the run allows."""


REPORT_HEADER = "#effvid bad-video report\tpath\treason\n"


class ForeignReportError(EffvidError):
    """A report would replace a file that effvid did not write as a report."""


def start_report(path: str | Path, lines: Sequence[str] = ()) -> Path:
    """Write a new report at `path`: the header, then `lines` (`report_line`s). A file there that
    is not an effvid report is left as it is: ForeignReportError."""
    path = Path(path)
    if path.exists() and not is_report(path):
        raise ForeignReportError(
            f"{path} exists and is not an effvid bad-video report: it is left as it is; give "
            "another report path"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(REPORT_HEADER + "".join(lines), encoding="utf-8")
    return path


def is_report(path: str | Path) -> bool:
    """Whether `path` is a report effvid wrote (its first line is the header; an empty file,
    as an interrupted start leaves, counts too)."""
    with Path(path).open("rb") as handle:
        first = handle.readline()
    return first in (b"", REPORT_HEADER.encode())


def report_line(path: str, reason: str) -> str:
    """One report record, `path<TAB>reason` and a newline, quoted where the path needs it; the
    reason is put on one line."""
    text = io.StringIO()
    csv.writer(text, delimiter="\t", lineterminator="\n").writerow([path, " ".join(reason.split())])
    return text.getvalue()


def read_bad_video_report(path: str | Path) -> dict[str, str]:
    """path -> reason for every video listed in a report file (empty if there is none yet)."""
    report = Path(path)
    if not report.exists():
        return {}
    with report.open(newline="", encoding="utf-8") as handle:
        # the header has three cells: only records have two
        return {row[0]: row[1] for row in csv.reader(handle, delimiter="\t") if len(row) == 2}


class BadVideoLog:
    """Unreadable videos of one dataset, in this process and (through the report) in all others.

    `missing` are videos the annotation lists but the disk lacks: they are listed, counted and
    held to `max_bad_fraction` like unreadable ones, from the start (`num_videos` counts them).
    """

    def __init__(
        self,
        *,
        num_videos: int,
        max_bad_fraction: float = 0.05,
        report_path: str | Path | None = None,
        missing: Sequence[str] = (),
        source: str = "the annotation",
    ) -> None:
        self.num_videos = num_videos
        self.max_bad_fraction = max_bad_fraction
        self.report_path = Path(report_path) if report_path is not None else None
        reason = f"not found (listed in {source}, not on disk)"
        self.bad: dict[str, str] = dict.fromkeys(missing, reason)
        if self.report_path is not None:
            start_report(self.report_path, [report_line(name, reason) for name in missing])
        if missing:
            where = f", listed in {self.report_path}" if self.report_path else ""
            logger.warning(
                "%d of %d videos listed in %s are not on disk%s",
                len(missing),
                num_videos,
                source,
                where,
            )
            self._check_fraction(len(missing), f"{len(missing)} are missing{where}")

    def _check_fraction(self, total: int, detail: str) -> None:
        if total > self.max_bad_fraction * self.num_videos:
            raise TooManyBadVideos(
                f"{total} of {self.num_videos} videos are unreadable or missing, more than "
                f"max_bad_fraction={self.max_bad_fraction:g}; {detail}"
            )

    def record(self, error: VideoDecodeError) -> None:
        """Count and list `error`'s video; raise TooManyBadVideos past the allowed fraction."""
        listed = read_bad_video_report(self.report_path) if self.report_path else {}
        if self.report_path is not None and error.path not in listed:
            with open(self.report_path, "a", encoding="utf-8") as report:
                report.write(report_line(error.path, error.reason))
        first_time_here = error.path not in self.bad
        self.bad[error.path] = error.reason
        total = len(self.bad.keys() | listed.keys())
        where = f", listed in {self.report_path}" if self.report_path else ""
        if first_time_here:
            logger.warning(
                "VideoDecodeError: %s; skipped (%d of %d videos unreadable so far%s)",
                error,
                total,
                self.num_videos,
                where,
            )
        self._check_fraction(total, f"last: {error}{where}")
