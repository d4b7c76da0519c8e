"""Prediction files that a kill cuts short: a rerun drops what is half written, in both formats,
and finishes the file as if nothing had happened."""

import pytest
import torch

from effvid.inference.prediction_files import (
    PredictionFile,
    prediction_record,
    read_records,
    recorded_videos,
)

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
    sink = PredictionFile(whole)
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

    resumed = PredictionFile(killed)
    assert resumed.done == {r["video"] for r in records[:2]}
    assert read_records(killed) == read_records(whole)[:2]  # the partial video is gone
    resumed.write(records[-1])
    resumed.close()
    assert killed.read_text() == text
    assert read_records(killed) == read_records(whole)


def test_a_file_cut_between_two_videos_keeps_both(tmp_path):
    path = tmp_path / "predictions.csv"
    sink = PredictionFile(path)
    for seed, name in enumerate(["a", "b"]):
        sink.write(_record(f"{name}.mp4", seed))
    sink.close()
    assert recorded_videos(path) == ["a.mp4", "b.mp4"]
    assert PredictionFile(path).done == {"a.mp4", "b.mp4"}
    assert len(read_records(path)) == 2
