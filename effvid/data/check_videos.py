"""`effvid check-videos`: decode every video of a folder or annotation file, in parallel
processes, and write a report of the broken ones with the reason (`path<TAB>reason` per record,
quoted where a path needs it: the format of the training bad-video report, `bad_videos.py`)."""

import multiprocessing
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from effvid.data.annotations import load_annotations
from effvid.data.bad_videos import report_line, start_report
from effvid.data.decoding import VideoDecodeError
from effvid.data.progress import progress_bar
from effvid.data.video_files import find_videos, open_video


@dataclass(frozen=True)
class VideoCheck:
    """One video: its decodable frame count, or why it cannot be read."""

    path: str
    num_frames: int = 0
    error: str | None = None


@dataclass
class CheckReport:
    checked: int
    broken: list[VideoCheck] = field(default_factory=list)
    report_path: Path | None = None

    def summary(self) -> str:
        where = f", listed in {self.report_path}" if self.report_path and self.broken else ""
        return f"{self.checked} videos checked, {len(self.broken)} broken{where}"


def check_video(path: str | Path) -> VideoCheck:
    """Decode every frame of one video (the whole stream: slow but certain)."""
    try:
        with open_video(path) as video:
            num_frames = video.count_decodable_frames()
    except VideoDecodeError as error:
        return VideoCheck(str(path), error=error.reason)
    if num_frames == 0:
        return VideoCheck(str(path), error="no decodable frame")
    return VideoCheck(str(path), num_frames)


def check_videos(
    paths: Sequence[str | Path],
    *,
    workers: int | None = None,
    report_path: str | Path | None = None,
    progress: bool = True,
    missing: Sequence[str] = (),
) -> CheckReport:
    """Check `paths` in `workers` processes (default: one per CPU core). `missing` are videos an
    annotation lists but the disk lacks: they go into the report as such."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(paths)))
    if report_path is not None:
        start_report(report_path)  # refused at once if the path holds another file
    broken = [VideoCheck(name, error="not found") for name in missing]
    bar = progress_bar(len(paths), "checked", enabled=progress, unit="video")
    with multiprocessing.get_context().Pool(workers) as pool:
        for result in pool.imap_unordered(check_video, [str(p) for p in paths], chunksize=4):
            if result.error is not None:
                broken.append(result)
            bar.set_postfix_str(f"{len(broken)} broken", refresh=False)
            bar.update()
    bar.close()
    broken.sort(key=lambda check: check.path)
    if report_path is not None:
        start_report(report_path, [report_line(check.path, check.error) for check in broken])
    return CheckReport(
        len(paths) + len(missing), broken, Path(report_path) if report_path else None
    )


def check_dataset(
    target: str | Path,
    *,
    video_root: str | Path | None = None,
    workers: int | None = None,
    report_path: str | Path | None = None,
    progress: bool = True,
) -> CheckReport:
    """Check every video of `target`: a folder (all videos below it) or an annotation file in any
    format `load_annotations` reads, with videos below `video_root` (default: the file's folder);
    listed but missing videos count as broken."""
    target = Path(target)
    if target.is_dir():
        paths, missing = find_videos(target), []
    else:
        videos = load_annotations(target, video_root)
        paths, missing = [record.path for record in videos.records], videos.missing
    return check_videos(
        paths, workers=workers, report_path=report_path, progress=progress, missing=missing
    )
