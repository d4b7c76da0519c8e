"""The built-in demo dataset: real mp4s and list files, cached, deterministic, no identity leak."""

import json
import os

import numpy as np
import pytest
import torch

from effvid.data import (
    DEMO_CLASSES,
    DEMO_TIME_REVERSED,
    VideoReader,
    load_demo_dataset,
    make_demo_data,
)
from effvid.data.demo_data import SPLITS, _split_digits, load_digit_scans
from effvid.data.demo_scenes import Scene

pytest.importorskip("sklearn", reason="the demo dataset draws its digits from scikit-learn")

SMALL = {"videos": 40, "num_frames": 8, "frame_size": 32}


def test_generates_lists_and_real_videos_then_reuses_them(tmp_path):
    data = make_demo_data(tmp_path / "demo", workers=2, progress=False, **SMALL)
    assert data.seconds is not None and data.split_sizes == {"train": 28, "val": 6, "test": 6}
    root = data.root
    assert (root / "classes.txt").read_text().split() == list(DEMO_CLASSES)
    lines = (root / "train.txt").read_text().splitlines()
    assert len(lines) == 28 and lines[3] == "videos/train/00003.mp4 3"
    with VideoReader(root / "videos" / "val" / "00005.mp4") as video:
        assert video.info.num_frames == 8
        assert video.read(range(8)).frames.shape == (8, 32, 32, 3)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["generator"]["parameters"]["videos"] == 40

    assert make_demo_data(root, progress=False, **SMALL).seconds is None  # the cache is reused
    again = make_demo_data(root, progress=False, workers=1, **{**SMALL, "videos": 60})
    assert again.seconds is not None and again.split_sizes == {"train": 42, "val": 9, "test": 9}
    assert len((root / "train.txt").read_text().splitlines()) == 42


def test_same_seed_same_videos_any_worker_count(tmp_path):
    first = make_demo_data(tmp_path / "a", workers=2, progress=False, **SMALL).root
    second = make_demo_data(tmp_path / "b", workers=1, progress=False, **SMALL).root
    for split in SPLITS:
        for path in sorted((first / "videos" / split).iterdir()):
            twin = second / "videos" / split / path.name
            assert torch.equal(
                VideoReader(path).read(range(8)).frames, VideoReader(twin).read(range(8)).frames
            )


def test_a_dataset_finished_first_by_another_run_is_kept_and_killed_runs_leave_nothing(
    tmp_path, monkeypatch
):
    """Two runs generating the same dataset at once (two lanes of a study): the one finishing
    second must not delete the finished dataset the first is already reading. A folder left by
    a killed generator is removed; one of a generator still running is not."""
    from effvid.data import demo_data

    root = make_demo_data(tmp_path / "demo", progress=False, **SMALL).root
    video = root / "videos" / "train" / "00000.mp4"
    first_copy = video.stat().st_ino
    killed = root.with_name(f"{root.name}.partial-{2**22 + 1}")  # above Linux's largest pid
    running = root.with_name(f"{root.name}.partial-{os.getppid()}")
    killed.mkdir()
    running.mkdir()
    checks = []

    def not_there_until_we_finish(*args):  # the other run finishes while this one renders
        checks.append(args)
        return len(checks) > 1 and is_valid(*args)

    is_valid = demo_data._is_valid_cache
    monkeypatch.setattr(demo_data, "_is_valid_cache", not_there_until_we_finish)
    make_demo_data(root, progress=False, **SMALL)
    assert video.stat().st_ino == first_copy
    assert sorted(path.name for path in tmp_path.iterdir()) == ["demo", running.name]


def test_refuses_to_replace_a_folder_that_is_not_a_demo_dataset(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not an effvid demo dataset"):
        make_demo_data(tmp_path, progress=False, **SMALL)


def test_splits_share_no_digit_scan():
    digits = load_digit_scans()
    parts = _split_digits(digits, seed=0)
    assert sum(len(part) for part in parts) == len(digits) == 1797
    keys = [{part[i].tobytes() for i in range(len(part))} for part in parts]
    # load_digits holds a few identical scans; no scan of one split may appear in another.
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])


def test_time_reversal_pairs_classes():
    assert sorted(DEMO_TIME_REVERSED) == list(range(len(DEMO_CLASSES)))
    assert all(DEMO_TIME_REVERSED[DEMO_TIME_REVERSED[c]] == c for c in DEMO_TIME_REVERSED)
    assert all(DEMO_TIME_REVERSED[c] != c for c in DEMO_TIME_REVERSED)


@pytest.mark.parametrize("label", range(10))
def test_every_class_renders_actors_inside_the_frame(label):
    scene = Scene(
        load_digit_scans()[:50], num_frames=12, frame_size=48, rng=np.random.default_rng(label)
    )
    frames = scene.render(label)
    assert frames.shape == (12, 48, 48, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[-1])
    for actor in scene.actors(label):
        assert np.all((actor.x >= 0) & (actor.x <= 48) & (actor.y >= 0) & (actor.y <= 48))


def test_load_demo_dataset_gives_train_val_test(tmp_path):
    train, val, test = load_demo_dataset(tmp_path / "demo", **SMALL)
    assert [len(d) for d in (train, val, test)] == [28, 6, 6]
    assert train.classes == list(DEMO_CLASSES)
    clip, label, meta = test[4]
    assert clip.shape == (3, 8, 32, 32) and label == 4
    assert meta["frame_indices"].tolist() == list(range(8))
    assert train[0][0].shape == (3, 8, 32, 32)


class _StillScene(Scene):
    """A registered task's scenes: the local task's, but every class drawn as class 0."""

    def render(self, label: int) -> np.ndarray:
        return super().render(0)


def test_a_registered_task_is_generated_and_accepted_by_recipes(tmp_path):
    from effvid.data.demo_data import TASKS, DemoTask, register_demo_task
    from effvid.errors import InputError
    from effvid.train.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"'still' is not a registered demo task \(registered:"):
        load_config({"data": {"demo_task": "still"}})
    with pytest.raises(InputError, match=r"'still' is not a registered demo task \(registered:"):
        make_demo_data(tmp_path / "none", task="still")
    task = DemoTask(_StillScene, ("a", "b"), {0: 0, 1: 1}, num_frames=6, frame_size=32)
    register_demo_task("still", task)
    try:
        register_demo_task("still", task)  # the same again: nothing happens
        with pytest.raises(ValueError, match="registered already"):
            register_demo_task("still", DemoTask(Scene, ("a",), {0: 0}, 6, 32))
        assert load_config({"data": {"demo_task": "still"}})["data"]["demo_task"] == "still"
        data = make_demo_data(tmp_path / "still", task="still", videos=6, workers=2, progress=False)
        assert (data.root / "classes.txt").read_text().split() == ["a", "b"]
        assert data.parameters.num_frames == 6 and len(list(data.root.rglob("*.mp4"))) == 6
    finally:
        del TASKS["still"]
