"""Kinetics-400/600/700 annotation CSVs, as distributed by DeepMind and the CVDF mirror.

    label,youtube_id,time_start,time_end,split[,is_cc]
    abseiling,--07WQ2iBlw,1,11,train

Clips are looked for anywhere below `video_root` under the usual downloader names,
`<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>` or `<youtube_id>.<ext>` (or frame folders of
those names). Test CSVs without a `label` column give label -1. Listed clips not on disk are
reported in `VideoList.missing` (see `VideoList.audit()`): Kinetics always loses some videos.
"""

import csv
from collections.abc import Sequence
from pathlib import Path

from effvid.data.annotations.records import (
    AnnotationError,
    ClassNames,
    Entry,
    VideoList,
    index_videos,
    make_video_list,
)

REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")


def read_kinetics(
    csv_path: str | Path,
    video_root: str | Path | None = None,
    *,
    classes: Sequence[str] | None = None,
) -> VideoList:
    """Read a Kinetics CSV. `classes` defaults to the sorted labels of this CSV; pass the training
    split's classes when reading a split that might lack some. `video_root` defaults to the CSV's
    folder."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            rows = [(reader.line_num, row) for row in reader]
            columns = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise AnnotationError(csv_path, None, f"cannot read ({error})") from None
    for column in REQUIRED_COLUMNS:
        if column not in columns:
            raise AnnotationError(csv_path, 1, f"no {column!r} column (header: {list(columns)})")
    labelled = "label" in columns
    if labelled:
        for line, row in rows:
            if row["label"] is not None and not row["label"].strip():
                raise AnnotationError(csv_path, line, "the label is empty")
    if classes is None:
        classes = sorted({row["label"] for _, row in rows}) if labelled else []
    class_names = ClassNames(classes)
    videos = index_videos(video_root if video_root is not None else Path(csv_path).parent)

    entries = []
    for line, row in rows:
        if None in row.values() or None in row:
            raise AnnotationError(csv_path, line, f"expected {len(columns)} fields")
        try:
            start, end = int(float(row["time_start"])), int(float(row["time_end"]))
        except ValueError:
            raise AnnotationError(
                csv_path, line, "time_start and time_end must be numbers"
            ) from None
        youtube_id = row["youtube_id"]
        clip_id = f"{youtube_id}_{start:06d}_{end:06d}"
        label = class_names.label(row["label"], csv_path, line) if labelled else -1
        path = videos.get(clip_id) or videos.get(youtube_id)
        entries.append(Entry(path, label, clip_id, str(csv_path), line))
    return make_video_list(entries, classes, csv_path)
