"""Outputs that know what made them and writers that own what they write: a rerun into a
prediction file or feature store of another checkpoint or other options is refused naming the
difference (or replaced with --overwrite); a file effvid did not write is never touched; a
second writer is refused at once; a corrupt line is named by file and line; memory does not
grow with a video's length; numeric options are bounded by the input; Ctrl-C exits 130."""

import csv
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from effvid.cli import main
from effvid.data.encoding import write_video
from effvid.files import exclusive_lock
from effvid.inference.feature_store import FeatureStore, FeatureWriter
from effvid.inference.prediction_files import PredictionFile, prediction_record, read_records
from tests.conftest import write_checkpoint


@pytest.fixture(scope="module")
def videos(tiny_videos, tmp_path_factory) -> list[str]:
    """Three tiny demo videos in a folder of their own."""
    folder = tmp_path_factory.mktemp("videos")
    for name in ["00000.mp4", "00001.mp4", "00002.mp4"]:
        shutil.copy(tiny_videos / "videos" / "test" / name, folder / name)
    return sorted(str(path) for path in folder.iterdir())


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory, tiny_videos) -> Path:
    """Another training of the same model and classes: other weights."""
    classes = (tiny_videos / "classes.txt").read_text().split()
    return write_checkpoint(tmp_path_factory.mktemp("other") / "other.pth", classes, causal=False)


def _run(command: str, *arguments, capsys) -> tuple[int, str]:
    """`effvid COMMAND ...` in this process, its exit status and its stderr."""
    code = main([command, *map(str, arguments), "--workers", "0"])
    return code, capsys.readouterr().err


def read_provenance(path: Path) -> dict:
    """What a prediction file's first line says made it (CSV: after `# `)."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    return json.loads(first.removeprefix("# "))


def _error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("effvid: error: "), stderr
    return lines[0]


# Provenance: a rerun of other weights or options is refused, naming the first difference.


def test_a_rerun_that_would_change_the_records_is_refused_naming_the_difference(
    videos, clip_checkpoint, other_checkpoint, tmp_path, capsys
):
    output = tmp_path / "labels.jsonl"
    first = ["--checkpoint", clip_checkpoint, "--output", output, "--clips", "2"]
    assert _run("predict", *videos[:2], *first, capsys=capsys)[0] == 0
    before = output.read_bytes()

    changes = {
        "weights_sha256": ["--checkpoint", other_checkpoint, "--clips", "2"],
        "clips 2, not none": ["--timeline", "--window", "0.2", "--stride", "0.1"],
        "top_k 5, not 3": ["--top-k", "3", "--clips", "2"],
        "clips 2, not 3": ["--clips", "3"],
    }
    for named, change in changes.items():
        checkpoint = [] if "--checkpoint" in change else ["--checkpoint", clip_checkpoint]
        again = [*videos, *checkpoint, "--output", output, *change]
        code, stderr = _run("predict", *again, capsys=capsys)
        assert code == 2
        line = _error_line(stderr)
        assert str(output) in line and named in line and "--overwrite" in line
        assert output.read_bytes() == before  # nothing mixed in

    again = [*videos, "--output", output, *changes["weights_sha256"], "--overwrite"]
    code, stderr = _run("predict", *again, capsys=capsys)
    assert code == 0, stderr
    assert [r["video"] for r in read_records(output)] == videos  # all redone, once each
    written = read_provenance(output)
    assert written["weights"] == str(other_checkpoint) and len(written["weights_sha256"]) == 64


def test_the_same_run_resumes_and_a_moved_checkpoint_is_the_same_checkpoint(
    videos, clip_checkpoint, tiny_videos, tmp_path, capsys
):
    output = tmp_path / "labels.csv"
    arguments = ["--output", output, "--clips", "2"]
    assert (
        _run("predict", videos[0], "--checkpoint", clip_checkpoint, *arguments, capsys=capsys)[0]
        == 0
    )
    moved = shutil.copy(clip_checkpoint, tmp_path / "renamed.pth")
    code, stderr = _run("predict", *videos, "--checkpoint", moved, *arguments, capsys=capsys)
    assert code == 0 and "2 videos done, 1 already in the output" in stderr
    assert [r["video"] for r in read_records(output)] == videos
    provenance = read_provenance(output)
    assert provenance["class_names"] == (tiny_videos / "classes.txt").read_text().split()
    assert provenance["top_k"] == 5 and provenance["clips"] == 2 and provenance["window"] is None
    assert provenance["preprocessing"]["crop_size"] == 32 and provenance["model"] == "vmf_xxs"


def test_a_feature_store_of_another_layer_is_refused_naming_it_or_replaced(
    videos, clip_checkpoint, tmp_path, capsys
):
    store = tmp_path / "store"
    common = [videos[0], "--checkpoint", clip_checkpoint, "--output", store, "--clips", "2"]
    assert _run("features", *common, capsys=capsys)[0] == 0
    code, stderr = _run("features", *common, "--layer", "logits", capsys=capsys)
    assert code == 2
    line = _error_line(stderr)
    assert 'layer "pre_logits", not "logits"' in line and "--overwrite" in line
    assert _run("features", *common, "--layer", "logits", "--overwrite", capsys=capsys)[0] == 0
    written = FeatureStore(store)
    assert written.manifest["layer"] == "logits" and written.videos == [videos[0]]
    assert written.load(videos[0])[0].shape == (1, 10)


def test_an_output_of_an_earlier_effvid_is_refused_unless_overwritten(tmp_path):
    from tests.inference.conftest import made_by

    legacy = tmp_path / "old.csv"
    legacy.write_text("video,start,end,rank,label,score\na.mp4,,,1,run,0.5\n")
    with pytest.raises(ValueError, match=r"written by an earlier effvid.*--overwrite"):
        PredictionFile(legacy, made_by())
    PredictionFile(legacy, made_by(), overwrite=True).close()
    assert read_provenance(legacy) == made_by() and read_records(legacy) == []


# Ownership: a file effvid did not write is never appended to nor replaced.


def test_a_file_effvid_did_not_write_is_left_as_it_was(videos, clip_checkpoint, tmp_path, capsys):
    contents = {
        "mine.csv": "name,grade\nalice,3\n",
        "mine.jsonl": '{"note": "my own lines"}\n',
        "one line.csv": "no newline at the end",
    }
    for name, content in contents.items():
        output = tmp_path / name
        output.write_text(content)
        overwrite = ["--overwrite"] if name == "mine.csv" else []  # not even then
        arguments = [videos[0], "--checkpoint", clip_checkpoint, "--output", output, *overwrite]
        code, stderr = _run("predict", *arguments, capsys=capsys)
        assert code == 2
        line = _error_line(stderr)
        assert f"{output} exists and is not a prediction file written by `effvid predict`" in line
        assert output.read_text() == content
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(contents)  # no lock files


def test_the_input_annotation_file_named_as_output_is_left_as_it_was(
    tiny_videos, clip_checkpoint, tmp_path, capsys
):
    annotation = tmp_path / "val.csv"  # a Kinetics-style annotation file
    rows = ["label,youtube_id,time_start,time_end,split"]
    rows += [f"{i},{i:05d},0,1,val" for i in range(2)]
    annotation.write_text("\n".join(rows) + "\n")
    before = annotation.read_bytes()
    arguments = [annotation, "--root", tiny_videos / "videos" / "test", "--output", annotation]
    code, stderr = _run("predict", *arguments, "--checkpoint", clip_checkpoint, capsys=capsys)
    assert code == 2 and "is not a prediction file" in _error_line(stderr)
    assert annotation.read_bytes() == before


def test_a_folder_that_is_not_a_feature_store_is_left_as_it_was(
    videos, clip_checkpoint, tmp_path, capsys
):
    folder = tmp_path / "my documents"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    arguments = [videos[0], "--checkpoint", clip_checkpoint, "--output", folder]
    code, stderr = _run("features", *arguments, "--overwrite", capsys=capsys)
    assert code == 2 and "is not a feature store written by `effvid features`" in _error_line(
        stderr
    )
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_second_writer_of_the_same_output_is_refused_at_once(
    videos, clip_checkpoint, tmp_path, capsys
):
    output = tmp_path / "labels.jsonl"
    store = tmp_path / "store"
    store.mkdir()
    with exclusive_lock(output), exclusive_lock(store):  # as another effvid process holds them
        for command, target in [("predict", output), ("features", store)]:
            arguments = [videos[0], "--checkpoint", clip_checkpoint, "--output", target]
            code, stderr = _run(command, *arguments, capsys=capsys)
            assert code == 2
            assert "another effvid process is writing the" in _error_line(stderr)
    assert not output.exists() and list(store.iterdir()) == [store / ".lock"]


# Messages: a corrupt line is named by file and line; Ctrl-C is one line and status 130.


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_a_corrupt_line_in_the_middle_is_named_by_file_and_line(
    videos, clip_checkpoint, tmp_path, capsys, suffix
):
    output = tmp_path / f"labels{suffix}"
    arguments = ["--checkpoint", clip_checkpoint, "--output", output, "--clips", "2"]
    assert _run("predict", *videos, *arguments, capsys=capsys)[0] == 0
    lines = output.read_text().splitlines(keepends=True)
    middle = 2 if suffix == ".jsonl" else 4  # the second record (CSV: a row of the first)
    lines[middle - 1] = '{"video": "half' + "\n" if suffix == ".jsonl" else "a,b\n"
    output.write_text("".join(lines))
    code, stderr = _run("predict", *videos, *arguments, capsys=capsys)
    assert code == 2 and _error_line(stderr).startswith(f"effvid: error: {output}:{middle}: ")


def test_a_corrupt_feature_index_line_is_named_by_file_and_line(tmp_path):
    index = tmp_path / "index.jsonl"
    index.write_text(
        '{"video": "a.mp4", "shard": "s"}\nnot json\n{"video": "b.mp4", "shard": "s"}\n'
    )
    (tmp_path / "store.json").write_text("{}")
    with pytest.raises(ValueError, match=rf"^{index}:2: "):
        FeatureStore(tmp_path)


@pytest.mark.parametrize(
    "command", [["predict", "v.mp4"], ["features", "v.mp4", "--output", "f"], ["stream", "v.mp4"],
                ["train"]],
)  # fmt: skip
def test_ctrl_c_exits_130_with_one_line(command, capsys, monkeypatch):
    import effvid.cli

    def interrupted(arguments):
        raise KeyboardInterrupt  # as Ctrl-C strikes anywhere in the command

    monkeypatch.setattr(effvid.cli, f"_{command[0]}", interrupted)
    try:
        code = main(command)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C went through effvid's main() as a KeyboardInterrupt")
    assert code == 130
    stderr = capsys.readouterr().err.strip().splitlines()
    assert len(stderr) == 1 and stderr[0].startswith(f"effvid: interrupted: {command[0]} stopped")


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def test_stream_on_an_audio_only_file_names_the_file(causal_checkpoint, tmp_path, capsys):
    sound = _audio_only(tmp_path / "sound only.wav")
    code = main(["stream", str(sound), "--checkpoint", str(causal_checkpoint)])
    line = _error_line(capsys.readouterr().err)
    assert code == 2 and str(sound) in line and "no video stream" in line


def test_stream_replaces_its_own_video_but_never_another(
    causal_checkpoint, videos, tmp_path, capsys
):
    mine = tmp_path / "holiday.mp4"
    shutil.copy(videos[0], mine)  # a video the user made, not effvid stream
    before = mine.read_bytes()
    command = ["stream", videos[1], "--checkpoint", str(causal_checkpoint), "--output"]
    assert main([*command, str(mine)]) == 2
    assert "is not a labelled video written by `effvid stream`" in _error_line(
        capsys.readouterr().err
    )
    assert mine.read_bytes() == before

    labelled = tmp_path / "labelled.mp4"
    for _ in range(2):  # the second run replaces the first's video
        assert main([*command, str(labelled)]) == 0
    capsys.readouterr()
    with av.open(str(labelled)) as container:
        provenance = json.loads(container.metadata["comment"])
    assert provenance["effvid"] == "stream" and provenance["source"] == videos[1]
    assert provenance["window"] == 4 and len(provenance["weights_sha256"]) == 64


# Bounded memory: a video is read a batch of clips at a time and folded as it comes.


def test_a_long_timeline_is_read_a_batch_at_a_time_and_gives_the_whole_video_s_record(
    clip_checkpoint, tmp_path, capsys, monkeypatch
):
    from effvid.data.preprocessing import EvalClips
    from effvid.inference.predictor import Predictor

    video = tmp_path / "long.mp4"
    frames = (np.full((32, 32, 3), (i * 7) % 256, np.uint8) for i in range(90))
    write_video(video, frames, fps=10)
    read_sizes = []
    read_many = EvalClips.read_many

    def counted(self, reader, plan):
        read_sizes.append(len(plan))
        return read_many(self, reader, plan)

    monkeypatch.setattr(EvalClips, "read_many", counted)
    output = tmp_path / "timeline.jsonl"
    arguments = [video, "--checkpoint", clip_checkpoint, "--output", output, "--timeline",
                 "--window", "1", "--stride", "0.5", "--batch-size", "4"]  # fmt: skip
    assert _run("predict", *arguments, capsys=capsys)[0] == 0
    (record,) = read_records(output)
    assert len(record["timeline"]) == 17 and max(read_sizes) == 4 and sum(read_sizes) == 17

    monkeypatch.setattr(EvalClips, "read_many", read_many)
    predictor = Predictor(checkpoint=clip_checkpoint)
    whole = predictor.timeline(video, window=1, stride=0.5, top_k=5)
    assert [(w["start"], w["end"]) for w in record["timeline"]] == [
        (round(p.start, 3), round(p.end, 3)) for p in whole
    ]
    assert [w["top"][0]["label"] for w in record["timeline"]] == [p.labels[0] for p in whole]


def test_a_video_s_mean_is_the_same_whether_its_clips_come_at_once_or_in_chunks():
    import torch

    logits = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    spans = [(float(i), float(i + 1)) for i in range(7)]
    from effvid.inference.prediction_files import RecordBuilder

    builder = RecordBuilder("v.mp4", k=4, class_names=["a", "b", "c", "d"], timeline=False)
    for start in range(0, 7, 3):
        builder.add(logits[start : start + 3], spans[start : start + 3])
    whole = prediction_record("v.mp4", logits, spans, k=4, class_names="abcd", timeline=False)
    assert [e["label"] for e in builder.record()["top"]] == [e["label"] for e in whole["top"]]
    scores = [e["score"] for e in builder.record()["top"]]
    assert scores == pytest.approx([e["score"] for e in whole["top"]], abs=1e-5)


def test_per_clip_features_of_long_videos_go_to_shards_of_bounded_size(tmp_path):
    import torch

    writer = FeatureWriter(tmp_path, {"effvid": "features"}, bytes_per_shard=1000)
    for name in ["a.mp4", "b.mp4", "c.mp4"]:
        writer.add(name, torch.zeros(100, 2), [(0.0, 1.0)] * 100)  # 800 bytes a video
    writer.flush()
    assert len(list(tmp_path.glob("shard-*.safetensors"))) == 2
    assert FeatureStore(tmp_path).load("c.mp4")[0].shape == (100, 2)


# Numeric options are bounded by what the input allows.


def test_options_beyond_the_input_are_clipped_with_a_warning(
    videos, clip_checkpoint, tmp_path, capsys, caplog
):
    output = tmp_path / "labels.jsonl"
    arguments = [videos[0], "--checkpoint", clip_checkpoint, "--output", output]
    options = ["--top-k", "50", "--clips", "100", "--batch-size", "100000"]
    code, stderr = _run("predict", *arguments, *options, capsys=capsys)
    assert code == 0
    warnings = [record.getMessage() for record in caplog.records]
    assert "--top-k 50 is more than the model's 10 classes: records list 10" in warnings
    assert "--batch-size 100000 is more clips than a batch may hold: using 1024" in warnings
    assert "1 have fewer frames than --clips (one clip per frame)" in stderr
    (record,) = read_records(output)
    assert len(record["top"]) == 10 and read_provenance(output)["top_k"] == 10


@pytest.mark.subprocess
def test_a_second_run_is_refused_while_the_first_writes_and_ctrl_c_leaves_it_resumable(
    videos, clip_checkpoint, tmp_path, capsys
):
    """The first run waits on a FIFO that nobody writes (its third input) after two records:
    a second run into its output is refused at once; Ctrl-C (SIGINT to its process group, as
    a terminal sends it) stops the first with status 130 and one line; a rerun completes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    reference = tmp_path / "reference.jsonl"
    common = ["--checkpoint", str(clip_checkpoint), "--clips", "2"]
    assert _run("predict", *videos, *common, "--output", reference, capsys=capsys)[0] == 0
    blocking = tmp_path / "waits forever.mp4"
    os.mkfifo(blocking)
    output = tmp_path / "labels.jsonl"
    inputs = [*videos[:2], str(blocking), videos[2]]
    command = [sys.executable, "-m", "effvid.cli", "predict", *inputs, *common,
               "--output", str(output), "--workers", "1", "--batch-size", "2"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while (output.read_text() if output.exists() else "").count('{"video": ') < 2:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        code, stderr = _run("predict", *videos, *common, "--output", output, capsys=capsys)
        assert code == 2
        assert _error_line(stderr) == (
            f"effvid: error: another effvid process is writing the prediction file {output}: "
            "wait for it to finish, or write elsewhere"
        )
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.count("effvid: interrupted: predict stopped") == 1
    assert [record["video"] for record in read_records(output)] == videos[:2]
    blocking.unlink()
    code, stderr = _run("predict", *videos, *common, "--output", output, capsys=capsys)
    assert code == 0 and "1 videos done, 2 already in the output" in stderr
    assert read_records(output) == read_records(reference)


def test_the_bad_video_report_keeps_any_file_name_and_lists_each_video_once(
    videos, clip_checkpoint, tmp_path, capsys
):
    from effvid.data.bad_videos import read_bad_video_report

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(videos[0], folder / "good.mp4")
    broken = folder / 'a\ttab, a "quote" and a\nnewline.mp4'
    broken.write_bytes(b"not a video")
    output = tmp_path / "labels.csv"
    arguments = [folder, "--checkpoint", clip_checkpoint, "--output", output, "--clips", "2"]
    for _ in range(2):  # the rerun does not list the broken video again
        assert _run("predict", *arguments, capsys=capsys)[0] == 1
    report = tmp_path / "labels.csv.bad_videos.tsv"
    assert list(read_bad_video_report(report)) == [str(broken)]
    with report.open(newline="") as handle:
        assert len(list(csv.reader(handle, delimiter="\t"))) == 1
