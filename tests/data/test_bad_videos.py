"""The bad-video policy across DataLoader workers: each worker holds its own copy of the log, and
the fraction that stops a run is counted over the report they all share."""

import copy
import logging
import pickle

import pytest

from effvid.data import TooManyBadVideos, read_bad_video_report
from effvid.data.bad_videos import REPORT_HEADER, BadVideoLog
from effvid.data.decoding import VideoDecodeError


def _workers(tmp_path, count, **settings):
    """The log as `count` DataLoader workers hold it: copies (forked or pickled) of one log."""
    log = BadVideoLog(report_path=tmp_path / "bad.tsv", **settings)
    return [copy.deepcopy(log), pickle.loads(pickle.dumps(log))][:count]


def test_the_fraction_counts_the_bad_videos_of_every_worker(tmp_path):
    first, second = _workers(tmp_path, 2, num_videos=10, max_bad_fraction=0.15)  # 1 allowed
    first.record(VideoDecodeError("a.mp4", "moov atom not found"))
    with pytest.raises(TooManyBadVideos, match=r"2 of 10 videos are unreadable or missing"):
        second.record(VideoDecodeError("b.mp4", "end of file"))  # one each: two in all
    assert read_bad_video_report(tmp_path / "bad.tsv") == {
        "a.mp4": "moov atom not found",
        "b.mp4": "end of file",
    }


def test_a_video_both_workers_find_bad_counts_once(tmp_path):
    first, second = _workers(tmp_path, 2, num_videos=10, max_bad_fraction=0.15)  # 1 allowed
    first.record(VideoDecodeError("a.mp4", "moov atom not found"))
    second.record(VideoDecodeError("a.mp4", "moov atom\nnot found"))  # listed once, on one line
    first.record(VideoDecodeError("a.mp4", "moov atom not found"))
    assert (tmp_path / "bad.tsv").read_text() == REPORT_HEADER + "a.mp4\tmoov atom not found\n"


def test_missing_videos_count_from_the_start_and_each_bad_video_once(tmp_path):
    (log,) = _workers(tmp_path, 1, num_videos=10, max_bad_fraction=0.25, missing=["gone.mp4"])
    for _ in range(3):
        log.record(VideoDecodeError("a.mp4", "broken"))  # 2 of 10: within 25%
    with pytest.raises(TooManyBadVideos, match=r"3 of 10 videos"):
        log.record(VideoDecodeError("b.mp4", "broken"))
    report = read_bad_video_report(tmp_path / "bad.tsv")
    assert report["gone.mp4"].startswith("not found")
    assert set(report) == {"gone.mp4", "a.mp4", "b.mp4"}


def test_five_percent_is_the_default_limit(tmp_path):
    log = BadVideoLog(num_videos=20)
    log.record(VideoDecodeError("a.mp4", "broken"))  # 1 of 20: within 5%, no report needed
    with pytest.raises(TooManyBadVideos, match=r"2 of 20 .* max_bad_fraction=0.05; last: "):
        log.record(VideoDecodeError("b.mp4", "broken"))


def test_the_report_and_the_log_say_what_was_skipped_and_where_it_is_listed(tmp_path, caplog):
    report = tmp_path / "new" / "run" / "bad.tsv"  # its folders are made
    with caplog.at_level(logging.WARNING, logger="effvid"):
        log = BadVideoLog(
            num_videos=40, max_bad_fraction=0.1, report_path=report, missing=["x y.mp4", "z.mp4"]
        )
        log.record(VideoDecodeError("clips, part 1/a b.mp4", "moov atom\tnot found"))
    assert report.read_text() == REPORT_HEADER + (
        "x y.mp4\tnot found (listed in the annotation, not on disk)\n"
        "z.mp4\tnot found (listed in the annotation, not on disk)\n"
        "clips, part 1/a b.mp4\tmoov atom not found\n"
    )
    assert read_bad_video_report(report)["clips, part 1/a b.mp4"] == "moov atom not found"
    assert caplog.messages == [
        f"2 of 40 videos listed in the annotation are not on disk, listed in {report}",
        "VideoDecodeError: cannot decode 'clips, part 1/a b.mp4' (moov atom\tnot found); "
        f"skipped (3 of 40 videos unreadable so far, listed in {report})",
    ]


def test_without_a_report_the_log_still_counts_and_says_nothing_of_a_file(caplog):
    with caplog.at_level(logging.WARNING, logger="effvid"):
        log = BadVideoLog(num_videos=10, max_bad_fraction=0.5, missing=["m.mp4"], source="x.txt")
        log.record(VideoDecodeError("a.mp4", "broken"))
    assert caplog.messages == [
        "1 of 10 videos listed in x.txt are not on disk",
        "VideoDecodeError: cannot decode 'a.mp4' (broken); skipped (2 of 10 videos unreadable "
        "so far)",
    ]


def test_a_missing_video_fails_the_dataset_at_once_past_the_limit():
    with pytest.raises(TooManyBadVideos, match=r"1 of 10 videos .*; 1 are missing$"):
        BadVideoLog(num_videos=10, missing=["gone.mp4"])


NAMES = ["tab\there.mp4", "line\nbreak.mp4", 'a "quoted" name.mp4', "plain.mp4"]


def test_file_names_holding_tabs_newlines_or_quotes_round_trip(tmp_path):
    """The report is written and read by the csv module: a name holding a tab used to put part
    of the name in the reason, one holding a newline to break the report into other lines."""
    report = tmp_path / "bad.tsv"
    log = BadVideoLog(num_videos=100, max_bad_fraction=0.5, report_path=report, missing=NAMES[:1])
    for name in NAMES[1:]:
        log.record(VideoDecodeError(name, "moov atom not found"))
    listed = read_bad_video_report(report)
    assert list(listed) == NAMES
    assert listed["tab\there.mp4"].startswith("not found")
    assert set(listed.values()) - {listed[NAMES[0]]} == {"moov atom not found"}
    log.record(VideoDecodeError(NAMES[1], "again"))  # listed already, by any worker: once
    assert list(read_bad_video_report(report)) == NAMES
