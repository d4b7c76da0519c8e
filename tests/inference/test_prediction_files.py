"""Prediction files that a kill cuts short: a rerun drops what is half written, in both formats,
and finishes the file as if nothing had happened."""

import pytest
import torch

from effvid.inference.prediction_files import (
    PredictionFile,
    header_text,
    prediction_record,
    read_records,
    recorded_videos,
)
from tests.inference.conftest import made_by

CLASSES = ["jump", "run", "swim", "dive"]


def _record(video, seed, timeline=False):
    logits = torch.randn(3, len(CLASSES), generator=torch.Generator().manual_seed(seed))
    spans = [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    return prediction_record(video, logits, spans, k=3, class_names=CLASSES, timeline=timeline)


@pytest.mark.parametrize("timeline", [False, True])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_file_cut_mid_video_resumes_to_the_uninterrupted_file(tmp_path, suffix, timeline):
    records = [_record(f"clips, part 1/{name}.mp4", seed, timeline) for seed, name in
               enumerate(["a", "b", "c"])]  # fmt: skip
    whole = tmp_path / f"whole{suffix}"
    sink = PredictionFile(whole, made_by())
    for record in records:
        sink.write(record)
    sink.close()
    text = whole.read_text()
    assert len(read_records(whole)) == 3

    # A kill in the middle of the last video's write: for CSV that video has lost rows while
    # some of its rows are complete lines (cut in its second row); for JSON lines, half a line.
    last = records[-1]["video"]
    first_of_last = text.index(f'"{last}"' if suffix == ".csv" else f'{{"video": "{last}"')
    cut = text.index("\n", first_of_last) + 6 if suffix == ".csv" else first_of_last + 20
    killed = tmp_path / f"killed{suffix}"
    killed.write_text(text[:cut])
    assert recorded_videos(killed) == [r["video"] for r in records[:2]]

    resumed = PredictionFile(killed, made_by())
    assert resumed.done == {r["video"] for r in records[:2]}
    assert read_records(killed) == read_records(whole)[:2]  # the partial video is gone
    resumed.write(records[-1])
    resumed.close()
    assert killed.read_text() == text
    assert read_records(killed) == read_records(whole)


def test_a_file_cut_between_two_videos_keeps_both(tmp_path):
    path = tmp_path / "predictions.csv"
    sink = PredictionFile(path, made_by())
    for seed, name in enumerate(["a", "b"]):
        sink.write(_record(f"{name}.mp4", seed))
    sink.close()
    assert recorded_videos(path) == ["a.mp4", "b.mp4"]
    assert PredictionFile(path, made_by()).done == {"a.mp4", "b.mp4"}
    assert len(read_records(path)) == 2


def test_a_record_is_the_mean_probability_of_the_clips_with_its_best_labels():
    logits = torch.tensor([[4.0, 1.0, 0.0, 0.0, 1.0], [0.0, 0.5, 0.0, 0.0, 6.0]])
    mean = logits.softmax(-1).mean(0)
    record = prediction_record("v.mp4", logits, [(0.0, 1.0), (1.0, 2.0)], k=3,
                               class_names=CLASSES, timeline=False)  # fmt: skip
    order = mean.argsort(descending=True)[:3].tolist()
    assert [e["label"] for e in record["top"]] == ["4", "jump", "run"]  # 5 logits, 4 names
    assert order[:2] == [4, 0]
    assert [e["score"] for e in record["top"]] == [round(float(mean[i]), 5) for i in order]
    assert record["top"][0]["score"] != float(mean[4])  # rounded to 5 digits


def test_a_timeline_has_one_window_per_clip_with_its_own_labels():
    logits = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    spans = [(0.12345, 1.23456), (1.0001, 2.0004)]
    record = prediction_record("v.mp4", logits, spans, k=1, class_names=CLASSES, timeline=True)
    score = round(float(logits[0].softmax(-1)[0]), 5)
    assert record == {
        "video": "v.mp4",
        "timeline": [
            {"start": 0.123, "end": 1.235, "top": [{"label": "jump", "score": score}]},
            {"start": 1.0, "end": 2.0, "top": [{"label": "swim", "score": score}]},
        ],
    }


def test_csv_rows_rank_from_1_and_leave_the_span_empty_without_a_timeline(tmp_path):
    path = tmp_path / "new folder" / "inside" / "p.csv"  # folders made as needed
    sink = PredictionFile(path, made_by())
    top = [{"label": "run", "score": 0.75}, {"label": "jump", "score": 0.25}]
    sink.write({"video": "ä.mp4", "top": top})
    sink.close()
    rows = "ä.mp4,,,1,run,0.75\nä.mp4,,,2,jump,0.25\n"
    assert path.read_bytes() == (header_text(".csv", made_by()) + rows).encode()
    assert header_text(".csv", made_by()).endswith("\nvideo,start,end,rank,label,score\n")


def test_an_empty_file_gets_the_csv_header_and_a_wrong_suffix_is_refused(tmp_path):
    (tmp_path / "p.csv").touch()
    PredictionFile(tmp_path / "p.csv", made_by()).close()
    assert (tmp_path / "p.csv").read_text() == header_text(".csv", made_by())
    with pytest.raises(ValueError, match=r"--output must end in \.jsonl or \.csv, got 'p\.txt'"):
        PredictionFile(tmp_path / "p.txt", made_by())


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_records_read_back_as_written(tmp_path, suffix):
    records = [_record("a.mp4", 0), _record("b.mp4", 1, timeline=True), _record("c.mp4", 2)]
    path = tmp_path / f"p{suffix}"
    sink = PredictionFile(path, made_by())
    for record in records:
        sink.write(record)
        assert record["video"] in sink.done
    sink.close()
    assert read_records(path) == records
    assert len(records[1]["timeline"]) == 3 and recorded_videos(path) == ["a.mp4", "b.mp4", "c.mp4"]
    assert recorded_videos(tmp_path / f"none{suffix}") == []


def test_a_timeline_needs_one_span_per_clip():
    with pytest.raises(ValueError):
        prediction_record("v.mp4", torch.zeros(3, 4), [(0.0, 1.0)] * 2, k=1, class_names=CLASSES,
                          timeline=True)  # fmt: skip
