"""What a resumed or sharded collection run relies on, without decoding a video: which videos a
run is given, where each process writes and which parts a later run finds, the merge of the
parts into one output with every video exactly once, and the views a request falls back to.

`_merge_parts` and `_merge_index` are called directly: the only public path to them is a whole
`predict_collection` / `extract_features` run under torchrun, which decodes videos through a
model (tests/inference/test_collection.py)."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from effvid.inference.collection import (
    ClipRequest,
    _merge_index,
    _merge_parts,
    checked_once,
    collect_videos,
    part_path,
    parts_of,
)
from effvid.inference.prediction_files import PredictionFile, prediction_record, read_records
from tests.inference.conftest import made_by

CLASSES = ["jump", "run", "swim"]


def _context(rank, world_size):
    return SimpleNamespace(rank=rank, world_size=world_size, local_rank=rank, device="cpu")


# Where each process writes, and which parts a later run finds.


def test_a_single_process_writes_the_output_itself(tmp_path):
    assert part_path(tmp_path / "out.csv", _context(0, 1)) == tmp_path / "out.csv"


@pytest.mark.parametrize(("rank", "world_size"), [(0, 2), (1, 2), (2, 3)])
def test_each_process_of_a_torchrun_run_writes_its_own_part_beside_the_output(
    tmp_path, rank, world_size
):
    path = part_path(tmp_path / "out.v1.jsonl", _context(rank, world_size))
    assert path == tmp_path / f"out.v1.part-{rank}-of-{world_size}.jsonl"


def test_the_parts_found_are_those_of_the_output_of_any_world_size_sorted(tmp_path):
    output = tmp_path / "out.csv"
    names = ["out.part-1-of-2.csv", "out.part-0-of-3.csv", "out.part-0-of-2.csv"]
    others = ["out.csv", "out.part-0-of-2.jsonl", "other.part-0-of-2.csv", "out.part-0.csv"]
    for name in names + others:
        (tmp_path / name).write_text("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "out.part-0-of-2.csv").write_text("")
    assert parts_of(output) == [tmp_path / name for name in sorted(names)]
    assert parts_of(tmp_path / "none.csv") == []


def test_the_parts_a_run_writes_are_the_parts_the_next_run_finds(tmp_path):
    output = tmp_path / "out.jsonl"
    written = [part_path(output, _context(rank, 3)) for rank in range(3)]
    for path in written:
        path.write_text("")
    assert parts_of(output) == written


# Every video exactly once.


def test_every_video_once_passes_in_any_order_and_extra_videos_are_allowed():
    checked_once(["b", "a", "c"], ["a", "b"], "out")
    checked_once([], [], "out")


def test_a_video_recorded_twice_fails_naming_the_output_the_count_and_the_first():
    with pytest.raises(RuntimeError) as raised:
        checked_once(["a", "b", "c", "b", "a", "b"], ["a", "b", "c"], "out.csv")
    assert str(raised.value) == "out.csv: 2 videos recorded twice, e.g. a"
    with pytest.raises(RuntimeError, match=r"^out.csv: 1 videos recorded twice, e.g. c$"):
        checked_once(["a", "c", "b", "c"], ["a", "b", "c"], "out.csv")


def test_a_missing_video_fails_naming_the_output_the_count_and_the_first():
    with pytest.raises(RuntimeError) as raised:
        checked_once(["b"], ["a", "b", "c", "d"], "out.csv")
    assert str(raised.value) == "out.csv: 3 videos missing, e.g. a"
    with pytest.raises(RuntimeError, match=r"^idx: 1 videos missing, e.g. d$"):
        checked_once(["a", "b", "c"], ["a", "b", "c", "d"], "idx")


# The merge of prediction parts.


def _record(video, seed=0):
    logits = torch.randn(2, len(CLASSES), generator=torch.Generator().manual_seed(seed))
    return prediction_record(
        video, logits, [(0.0, 1.0), (1.0, 2.0)], k=2, class_names=CLASSES, timeline=False
    )


def _write(path, videos):
    sink = PredictionFile(path, made_by())
    for seed, video in enumerate(videos):
        sink.write(_record(video, seed))
    sink.close()


def _videos(path):
    return [record["video"] for record in read_records(path)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_the_parts_are_appended_to_the_output_in_order_and_removed(tmp_path, suffix):
    output = tmp_path / f"out{suffix}"
    _write(output, ["a.mp4"])  # a run before the one that was sharded
    _write(part_path(output, _context(1, 2)), ["d.mp4", "e.mp4"])
    _write(part_path(output, _context(0, 2)), ["b.mp4", "c.mp4"])
    _merge_parts(output, ["a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4"], [])
    assert _videos(output) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4", "e.mp4"]
    assert read_records(output)[1] == read_records(output)[1] | {"video": "b.mp4"}
    assert sorted(tmp_path.iterdir()) == [output]


def test_the_merged_records_are_the_records_written(tmp_path):
    output = tmp_path / "out.jsonl"
    whole = tmp_path / "whole.jsonl"
    _write(whole, ["a.mp4", "b.mp4"])
    _write(part_path(output, _context(0, 2)), ["a.mp4"])
    sink = PredictionFile(part_path(output, _context(1, 2)), made_by())
    sink.write(_record("b.mp4", 1))
    sink.close()
    _merge_parts(output, ["a.mp4", "b.mp4"], [])
    assert output.read_text() == whole.read_text()


def test_without_an_earlier_output_the_parts_alone_are_merged(tmp_path):
    output = tmp_path / "out.csv"
    _write(part_path(output, _context(0, 2)), ["a.mp4"])
    _write(part_path(output, _context(1, 2)), ["b.mp4"])
    _merge_parts(output, ["a.mp4", "b.mp4", "bad.mp4"], ["bad.mp4"])
    assert _videos(output) == ["a.mp4", "b.mp4"] and parts_of(output) == []


def test_a_failed_video_is_not_expected_but_any_other_missing_one_fails_the_merge(tmp_path):
    output = tmp_path / "out.csv"
    _write(part_path(output, _context(0, 2)), ["a.mp4"])
    _write(part_path(output, _context(1, 2)), ["b.mp4"])
    with pytest.raises(RuntimeError, match=r"out.csv: 1 videos missing, e.g. c.mp4"):
        _merge_parts(output, ["a.mp4", "b.mp4", "c.mp4", "bad.mp4"], ["bad.mp4"])
    assert not output.exists() and len(parts_of(output)) == 2  # nothing lost


def test_a_video_in_the_output_and_in_a_part_fails_the_merge_and_keeps_everything(tmp_path):
    output = tmp_path / "out.jsonl"
    _write(output, ["a.mp4"])
    before = output.read_text()
    _write(part_path(output, _context(0, 2)), ["a.mp4"])
    _write(part_path(output, _context(1, 2)), ["b.mp4"])
    with pytest.raises(RuntimeError, match=r"recorded twice, e.g. a.mp4"):
        _merge_parts(output, ["a.mp4", "b.mp4"], [])
    assert output.read_text() == before and len(parts_of(output)) == 2


# The merge of feature index parts.


def _index(path, videos, blank=False):
    lines = [json.dumps({"video": video, "shard": "s", "row": row}) for row, video in
             enumerate(videos)]  # fmt: skip
    text = "".join(f"{line}\n" for line in lines)
    path.write_text(f"\n{text}  \n" if blank else text, encoding="utf-8")
    return lines


def test_the_index_parts_are_appended_to_the_index_in_order_and_removed(tmp_path):
    first = _index(tmp_path / "index.jsonl", ["a.mp4"])
    second = _index(tmp_path / "index.jsonl.part-1-of-2", ["c.mp4", "d.mp4"], blank=True)
    third = _index(tmp_path / "index.jsonl.part-0-of-2", ["b.mp4"])
    (tmp_path / "store.json").write_text("{}")
    _merge_index(tmp_path, ["a.mp4", "b.mp4", "c.mp4", "d.mp4", "bad.mp4"], ["bad.mp4"])
    text = (tmp_path / "index.jsonl").read_text(encoding="utf-8")
    assert text == "".join(f"{line}\n" for line in first + third + second)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.jsonl", "store.json"]


def test_without_an_earlier_index_the_parts_alone_are_merged(tmp_path):
    lines = _index(tmp_path / "index.jsonl.part-0-of-1", ["é.mp4"])
    _merge_index(tmp_path, ["é.mp4"], [])
    assert (tmp_path / "index.jsonl").read_text(encoding="utf-8") == f"{lines[0]}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["index.jsonl"]


@pytest.mark.parametrize(
    ("videos", "failed", "message"),
    [
        (["a.mp4", "b.mp4", "c.mp4"], ["x.mp4"], r"index.jsonl: 1 videos missing, e.g. c.mp4"),
        (["a.mp4"], [], r"index.jsonl: 1 videos recorded twice, e.g. a.mp4"),
    ],
)
def test_a_missing_or_twice_indexed_video_fails_the_index_merge_and_keeps_the_parts(
    tmp_path, videos, failed, message
):
    _index(tmp_path / "index.jsonl", ["a.mp4"])
    _index(tmp_path / "index.jsonl.part-0-of-2", ["b.mp4"] if failed else ["a.mp4"])
    before = (tmp_path / "index.jsonl").read_text()
    with pytest.raises(RuntimeError, match=message):
        _merge_index(tmp_path, videos, failed)
    assert (tmp_path / "index.jsonl").read_text() == before
    assert (tmp_path / "index.jsonl.part-0-of-2").exists()


# The videos a run is given.


def test_folders_files_missing_files_and_list_files_give_each_video_once_in_order(tmp_path):
    folder = tmp_path / "videos"
    (folder / "b").mkdir(parents=True)
    for name in ["b/2.mp4", "1.MKV", "notes.txt"]:
        (folder / name).write_bytes(b"")
    upper = tmp_path / "loose.MP4"
    upper.write_text("not a list file")
    listed = tmp_path / "list.txt"
    listed.write_text("videos/1.MKV 0\nelsewhere/gone.mp4 1\nvideos/b/2.mp4 1\n")
    inputs = [upper, str(folder), tmp_path / "missing.txt", listed, folder / "b" / "2.mp4"]
    assert collect_videos(inputs) == [
        str(upper),
        str(folder / "1.MKV"),
        str(folder / "b" / "2.mp4"),
        str(tmp_path / "missing.txt"),
        "elsewhere/gone.mp4",  # a missing listed video, as listed
    ]


def test_a_list_file_s_videos_are_below_the_root_given(tmp_path):
    root = tmp_path / "root"
    (root / "v").mkdir(parents=True)
    (root / "v" / "1.mp4").write_bytes(b"")
    listed = tmp_path / "list.txt"
    listed.write_text("v/1.mp4 0\nv/2.mp4 0\n")
    assert collect_videos([listed], root) == [str(root / "v" / "1.mp4"), "v/2.mp4"]
    assert collect_videos([listed], str(root)) == collect_videos([listed], root)


def test_no_inputs_give_no_videos():
    assert collect_videos([]) == []


# The views a request falls back to.


def test_a_request_without_views_takes_the_model_card_s():
    card = SimpleNamespace(test_clips=4)
    assert ClipRequest().for_model(card) == ClipRequest(clips=4)
    assert ClipRequest(stride=2.0).for_model(card) == ClipRequest(clips=4, stride=2.0)


@pytest.mark.parametrize(
    "request_", [ClipRequest(clips=2), ClipRequest(window=1.5, stride=0.5), ClipRequest(window=1.5)]
)
def test_a_request_with_views_or_a_timeline_keeps_them(request_):
    assert request_.for_model(SimpleNamespace(test_clips=4)) == request_


def test_the_model_card_s_views_are_those_of_a_real_card():
    from effvid.models import get_model_card, list_models

    card = get_model_card(list_models()[0])
    assert ClipRequest().for_model(card).clips == card.test_clips


def test_parts_are_found_for_a_path_given_as_a_string_path(tmp_path):
    output = Path(str(tmp_path / "out.csv"))
    (tmp_path / "out.part-0-of-2.csv").write_text("")
    assert parts_of(output) == [tmp_path / "out.part-0-of-2.csv"]
