"""`check_dataset`: every video decoded in worker processes, broken ones reported with a reason."""

from effvid.cli import main
from effvid.data import check_dataset, read_bad_video_report
from tests.data.videos import write_indexed_video


def test_folder_check_reports_broken_videos(tmp_path, capsys):
    videos = tmp_path / "videos"
    (videos / "run").mkdir(parents=True)
    for index in range(4):
        write_indexed_video(videos / "run" / f"{index}.mp4", 10)
    good = (videos / "run" / "0.mp4").read_bytes()
    (videos / "run" / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (videos / "empty.webm").touch()
    (videos / "notes.txt").write_text("not a video")
    report = tmp_path / "report.tsv"
    result = check_dataset(videos, workers=2, report_path=report)
    assert result.checked == 6
    assert sorted(check.path for check in result.broken) == [
        str(videos / "empty.webm"),
        str(videos / "run" / "truncated.mp4"),
    ]
    assert result.summary() == f"6 videos checked, 2 broken, listed in {report}"
    assert set(read_bad_video_report(report)) == {check.path for check in result.broken}
    assert "6/6" in capsys.readouterr().err


def test_annotation_check_counts_missing_videos(tmp_path):
    write_indexed_video(tmp_path / "a.mp4", 5)
    (tmp_path / "list.txt").write_text("a.mp4 0\nb.mp4 1\n")
    result = check_dataset(tmp_path / "list.txt", workers=1, progress=False)
    assert result.checked == 2
    assert [(check.path, check.error) for check in result.broken] == [("b.mp4", "not found")]


def test_a_broken_video_whose_name_holds_a_tab_and_a_newline_is_reported_whole(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a\tb\nc.mp4").write_bytes(b"not a video")
    report = tmp_path / "report.tsv"
    check_dataset(videos, workers=1, report_path=report, progress=False)
    assert list(read_bad_video_report(report)) == [str(videos / "a\tb\nc.mp4")]


def test_a_report_path_holding_another_file_is_refused_and_left_as_it_is(tmp_path, capsys):
    """check-videos used to replace whatever --report named, the user's own file included."""
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "broken.mp4").write_bytes(b"not a video")
    mine = tmp_path / "notes.tsv"
    mine.write_text("my own\tnotes\n")
    assert main(["check-videos", str(videos), "--report", str(mine), "--workers", "1"]) == 2
    assert "is not an effvid bad-video report" in capsys.readouterr().err
    assert mine.read_text() == "my own\tnotes\n"
    report = tmp_path / "report.tsv"
    for _ in range(2):  # effvid's own report is replaced by the next check
        assert main(["check-videos", str(videos), "--report", str(report), "--workers", "1"]) == 1
        assert list(read_bad_video_report(report)) == [str(videos / "broken.mp4")]
