"""Whole collections: one record per readable video and a report line per broken one, valid
JSON lines / CSV / JSON documents, a kill -9 and a rerun giving exactly an uninterrupted run's
records, two torchrun processes giving one process's records, and feature stores whose
entries equal the model's own output."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from effvid.cli import main
from effvid.inference.feature_store import FeatureStore
from effvid.inference.prediction_files import read_records
from effvid.models import create_model


@pytest.fixture(scope="module")
def collection(tiny_videos, tmp_path_factory):
    """The tiny demo test videos under a folder whose name has a comma and a space, two broken
    files among them, and a list file naming them all."""
    folder = tmp_path_factory.mktemp("collection") / "clips, part 1"
    shutil.copytree(tiny_videos / "videos" / "test", folder)
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "empty.mp4").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def checkpoint(tiny_videos, tmp_path_factory):
    classes = (tiny_videos / "classes.txt").read_text().split()
    torch.manual_seed(0)
    model = create_model("vmf_xxs", num_classes=len(classes))
    path = tmp_path_factory.mktemp("model") / "model.pth"
    torch.save({"model": model.state_dict(), "model_name": "vmf_xxs", "class_names": classes,
                "preprocessing": {"num_frames": 4, "sampling_rate": 2, "crop_size": 32,
                                  "short_side": 32, "mean": [0.5] * 3, "std": [0.25] * 3}},
               path)  # fmt: skip
    return path


def _predict(arguments, capsys=None):
    code = main(["predict", *map(str, arguments), "--clips", "2", "--workers", "1"])
    return code, capsys.readouterr() if capsys is not None else None


def test_a_collection_with_broken_videos(collection, checkpoint, tmp_path, capsys):
    output = tmp_path / "predictions.jsonl"
    code, captured = _predict([collection, "--checkpoint", checkpoint, "--output", output], capsys)
    assert code == 1  # some videos failed
    records = read_records(output)
    readable = sorted(str(p) for p in collection.glob("0*.mp4"))
    assert sorted(r["video"] for r in records) == readable
    assert all(len(r["top"]) == 5 for r in records)
    report = output.with_name(f"{output.name}.bad_videos.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in report) == sorted(
        str(collection / name) for name in ("broken.mp4", "empty.mp4")
    )
    assert f"{len(readable)} videos done, 0 already in the output, 2 unreadable" in captured.err

    table = tmp_path / "timeline.csv"
    command = [collection, "--checkpoint", checkpoint, "--output", table, "--timeline",
               "--window", "0.4", "--stride", "0.2", "--top-k", "2"]  # fmt: skip
    assert _predict(command, capsys)[0] == 1
    with table.open(newline="") as handle:
        assert handle.readline().startswith('# {"effvid": "predictions"')  # the provenance
        rows = list(csv.DictReader(handle))
    assert {row["video"] for row in rows} == set(readable)  # the comma in the path is quoted
    assert {row["rank"] for row in rows} == {"1", "2"}  # --top-k in timeline mode
    assert all(float(row["start"]) < float(row["end"]) for row in rows)

    code, captured = _predict([*readable[:2], "--checkpoint", checkpoint, "--json"], capsys)
    assert code == 0 and [r["video"] for r in json.loads(captured.out)] == readable[:2]


@pytest.mark.subprocess
def test_a_killed_run_resumes_to_the_uninterrupted_records(collection, checkpoint, tmp_path):
    """The run is killed (SIGKILL, the whole process group) while it waits on a FIFO that
    nobody writes, placed third among its inputs: it has written exactly the records of the two
    videos before it and can neither finish nor write more, so the kill always lands mid-run."""
    reference = tmp_path / "reference.jsonl"
    assert _predict([collection, "--checkpoint", checkpoint, "--output", reference])[0] == 1
    readable = sorted(str(p) for p in collection.glob("0*.mp4"))
    assert len(readable) >= 3
    blocking = tmp_path / "waits forever.mp4"
    os.mkfifo(blocking)  # opening it blocks until a writer comes: none ever does
    killed = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "effvid.cli", "predict", *readable[:2], str(blocking),
               *readable[2:], "--checkpoint", str(checkpoint), "--output", str(killed),
               "--clips", "2", "--workers", "1", "--batch-size", "2"]  # fmt: skip
    log = (tmp_path / "killed.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_lines(killed)) < 3:  # the provenance and two records
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no two records in 120 s"
            time.sleep(0.05)
        time.sleep(0.5)  # it would have written more by now if it could
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the main process and its DataLoader worker
        process.wait()
        log.close()
    assert process.returncode == -signal.SIGKILL
    assert [json.loads(line)["video"] for line in _lines(killed)[1:]] == readable[:2]
    with killed.open("a") as handle:
        handle.write('{"video": "half a rec')  # as if the kill struck mid-line
    blocking.unlink()
    assert _predict([collection, "--checkpoint", checkpoint, "--output", killed])[0] == 1
    by_video = {r["video"]: r for r in read_records(reference)}
    resumed = read_records(killed)
    assert [r["video"] for r in resumed[:2]] == readable[:2]  # kept, not redone
    assert len(resumed) == len(by_video) and {r["video"]: r for r in resumed} == by_video


def _lines(path: Path) -> list[str]:
    """The complete lines of a file being written (none while it does not exist)."""
    text = path.read_text() if path.exists() else ""
    return text[: text.rfind("\n") + 1].splitlines()


@pytest.mark.subprocess
def test_two_processes_give_the_records_of_one(collection, checkpoint, tmp_path):
    single = tmp_path / "single.jsonl"
    assert _predict([collection, "--checkpoint", checkpoint, "--output", single])[0] == 1
    double = tmp_path / "double.jsonl"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "effvid.cli", "predict", str(collection),
               "--checkpoint", str(checkpoint), "--output", str(double), "--clips", "2",
               "--workers", "1", "--device", "cpu"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]  # the two broken videos
    assert not list(tmp_path.glob("double.part-*"))
    records = read_records(double)
    assert len(records) == len({r["video"] for r in records})  # none twice
    expected = {r["video"]: r["top"][0]["label"] for r in read_records(single)}
    assert {r["video"]: r["top"][0]["label"] for r in records} == expected  # none missing


@pytest.mark.parametrize(("layer", "per_clip"), [("pre_logits", False), ("tokens", True)])
def test_features_are_the_models_own_output(collection, checkpoint, tmp_path, layer, per_clip):
    store_folder = tmp_path / "store"
    command = ["features", str(collection), "--checkpoint", str(checkpoint), "--output",
               str(store_folder), "--layer", layer, "--clips", "3", "--workers", "1",
               "--batch-size", "2"]  # fmt: skip
    # A video's 3 clips come in chunks of 2 and 1, folded into one entry.
    assert main([*command, *(["--per-clip"] if per_clip else [])]) == 1  # the broken videos
    store = FeatureStore(store_folder)
    assert store.manifest["layer"] == layer and len(store.manifest["weights_sha256"]) == 64
    video = sorted(store.videos)[0]
    features, spans = store.load(video)

    from effvid.data import open_video
    from effvid.inference.predictor import Predictor

    predictor = Predictor(checkpoint=checkpoint)
    with open_video(video, short_side=32) as reader:
        plan = predictor.clips.plan(reader.info, clips=3)
        clips = predictor.clips.read_many(reader, plan)
    with torch.no_grad():
        direct = predictor.model.network.forward_features(clips)
        if layer == "tokens":
            expected = direct.tokens
        else:
            expected = predictor.model.network.forward_head(direct, pre_logits=True).mean(0, True)
    assert features.shape == expected.shape
    torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)
    assert len(spans) == (3 if per_clip else 1)
    assert Path(store_folder / "bad_videos.tsv").read_text().count("\n") == 2
