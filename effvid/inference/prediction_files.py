"""Predictions of a collection as files that are always valid and can be resumed.

One record per video, written (and flushed) as soon as the video is done, by the standard
writers: JSON lines (`.jsonl`: `{"video": ..., "top": [{"label", "score"}, ...]}`, or with a
timeline `{"video": ..., "timeline": [{"start", "end", "top": [...]}, ...]}`) or CSV (`.csv`,
the csv module: `video,start,end,rank,label,score`, one row per label of the top k, per window
with a timeline). A rerun reads what is there and skips those videos; what a kill cut short (a
partial last line, or the possibly partial rows of the last video of a CSV) is removed first.
"""

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from effvid.errors import InputError

FORMATS = (".jsonl", ".csv")
CSV_FIELDS = ["video", "start", "end", "rank", "label", "score"]


def top_k(probabilities: torch.Tensor, k: int, class_names: Sequence[str]) -> list[dict]:
    best = probabilities.topk(min(k, probabilities.numel()))
    return [
        {"label": class_names[i] if i < len(class_names) else str(i), "score": round(float(p), 5)}
        for p, i in zip(best.values, best.indices.tolist(), strict=True)
    ]


def prediction_record(
    video: str,
    logits: torch.Tensor,
    spans: Sequence[tuple[float, float]],
    *,
    k: int,
    class_names: Sequence[str],
    timeline: bool,
) -> dict:
    """One video's record from its clips' logits (n, classes): the mean probabilities of the
    clips, or a timeline, one entry per clip with its span."""
    probabilities = logits.softmax(dim=-1)
    if not timeline:
        return {"video": video, "top": top_k(probabilities.mean(dim=0), k, class_names)}
    windows = [
        {"start": round(start, 3), "end": round(end, 3), "top": top_k(row, k, class_names)}
        for (start, end), row in zip(spans, probabilities, strict=True)
    ]
    return {"video": video, "timeline": windows}


def csv_rows(record: dict) -> list[list]:
    windows = record.get("timeline") or [{"start": "", "end": "", "top": record["top"]}]
    return [
        [record["video"], window["start"], window["end"], rank, entry["label"], entry["score"]]
        for window in windows
        for rank, entry in enumerate(window["top"], start=1)
    ]


class PredictionFile:
    """Appends records to a `.jsonl` or `.csv` file; `done` are the videos already in it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.suffix not in FORMATS:
            raise InputError(f"--output must end in {' or '.join(FORMATS)}, got {self.path.name!r}")
        self.done: set[str] = set(self._repair())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self.handle = self.path.open("a", newline="", encoding="utf-8")
        if new and self.path.suffix == ".csv":
            self._write_csv([CSV_FIELDS])

    def _repair(self) -> list[str]:
        """The videos recorded in full, after removing what an interrupted run left half done."""
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        complete, videos = _complete(self.path, text)
        if complete != text:
            self.path.write_text(complete, encoding="utf-8")
        return videos

    def write(self, record: dict) -> None:
        if self.path.suffix == ".jsonl":
            self.handle.write(json.dumps(record) + "\n")
        else:
            self._write_csv(csv_rows(record))
        self.handle.flush()
        self.done.add(record["video"])

    def _write_csv(self, rows: list[list]) -> None:
        self.handle.write(_csv_text(rows))  # one write per video: all its rows or none

    def close(self) -> None:
        self.handle.close()


def _complete(path: Path, text: str) -> tuple[str, list[str]]:
    """The part of a prediction file's text that a kill did not cut short, and its videos."""
    complete = text[: text.rfind("\n") + 1]
    if path.suffix == ".jsonl":
        return complete, [json.loads(line)["video"] for line in complete.splitlines() if line]
    rows = list(csv.reader(io.StringIO(complete)))[1:]
    if complete != text and rows:  # the last video may have lost rows too
        last = rows[-1][0]
        rows = [row for row in rows if row[0] != last]
        complete = _csv_text([CSV_FIELDS, *rows])
    return complete, list(dict.fromkeys(row[0] for row in rows))


def recorded_videos(path: str | Path) -> list[str]:
    """The videos a prediction file holds in full (what a rerun skips)."""
    path = Path(path)
    return _complete(path, path.read_text(encoding="utf-8"))[1] if path.exists() else []


def _csv_text(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def read_records(path: str | Path) -> list[dict]:
    """The records of a prediction file (either format), in file order."""
    path = Path(path)
    if path.suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    records: dict[str, dict] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            record = records.setdefault(row["video"], {"video": row["video"]})
            entry = {"label": row["label"], "score": float(row["score"])}
            if row["start"] == "":
                record.setdefault("top", []).append(entry)
                continue
            windows = record.setdefault("timeline", [])
            span = (float(row["start"]), float(row["end"]))
            if not windows or (windows[-1]["start"], windows[-1]["end"]) != span:
                windows.append({"start": span[0], "end": span[1], "top": []})
            windows[-1]["top"].append(entry)
    return list(records.values())
