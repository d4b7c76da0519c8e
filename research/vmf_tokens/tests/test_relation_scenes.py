"""The demo data's global tasks: every class is a relation between a cue and a probe that are never
on screen together, far apart across the frame, among distractors that look like them; in
`global_relative` no key digit alone tells a relation; the videos are deterministic and cached
like the local task's."""

import functools
import itertools

import numpy as np
import pytest
from relation_scenes import (
    CLASSES,
    PALETTE,
    TIME_REVERSED,
    RelationScene,
    RelativeRelationScene,
)

from effvid.data import make_demo_data
from effvid.data.demo_data import TASKS, load_digit_scans

pytestmark = pytest.mark.research
pytest.importorskip("sklearn", reason="the demo dataset draws its digits from scikit-learn")

FRAMES, SIZE = 24, 80
SCENES = (RelationScene, RelativeRelationScene)


@functools.cache
def _scans() -> np.ndarray:
    return load_digit_scans()[:200]  # read once: each read takes ~30 ms, the scenes ~1 ms


def _scene(label: int, seed: int, scene_type: type[RelationScene] = RelationScene):
    scene = scene_type(
        _scans(), num_frames=FRAMES, frame_size=SIZE,
        rng=np.random.default_rng([seed, label]),
    )  # fmt: skip
    return scene.distractors(), scene.actors(label)


@pytest.mark.parametrize("scene_type", SCENES)
@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_each_class_is_its_relation_between_cue_and_probe(label, scene_type):
    colour, size, height = CLASSES[label].replace("_colour", "").split("_")
    for seed in range(5):
        distractors, (cue, probe) = _scene(label, seed, scene_type)
        assert not np.any((cue.opacity > 0) & (probe.opacity > 0))  # never on screen together
        assert cue.opacity[: FRAMES // 2].sum() > 0 and probe.opacity[FRAMES // 2 :].sum() > 0
        apart = np.hypot(cue.x.mean() - probe.x.mean(), cue.y.mean() - probe.y.mean())
        assert apart > 0.45 * SIZE and abs(cue.x.mean() - probe.x.mean()) > 0.4 * SIZE
        same = np.abs(cue.colour - probe.colour).max() < 40
        assert same == (colour == "same")
        assert (probe.size.mean() > cue.size.mean()) == (size == "larger")
        assert (probe.y.mean() < cue.y.mean()) == (height == "higher")  # y grows downwards
        assert all((d.opacity == 1).all() for d in distractors)  # present the whole clip
        assert 3 <= len(distractors) <= 5


@pytest.mark.parametrize("scene_type", SCENES)
def test_distractors_look_like_the_key_digits(scene_type):
    colours, sizes, key_sizes = set(), [], []
    for label, seed in itertools.product(range(len(CLASSES)), range(4)):
        distractors, actors = _scene(label, seed, scene_type)
        for sprite in distractors:
            colours.add(int(np.abs(PALETTE - sprite.colour).sum(axis=1).argmin()))
            sizes.append(sprite.size[0])
        key_sizes += [sprite.size[0] for sprite in actors]
    assert colours == set(range(len(PALETTE)))  # every key colour is also a distractor colour
    assert min(sizes) < min(key_sizes) + 2 and max(sizes) > max(key_sizes) - 2  # the same range


def _best_single_digit_guess(values: np.ndarray, truth: np.ndarray) -> float:
    """The accuracy of the best threshold rule on one digit's values (either direction)."""
    accuracies = [np.mean((values > t) == truth) for t in np.unique(values)]
    return max(max(accuracies), 1 - min(accuracies))


@pytest.mark.parametrize("scene_type", SCENES)
def test_only_in_the_relative_task_does_every_relation_need_both_key_digits(scene_type):
    """Of the global task's relations, size and height can be read off the probe alone (a
    threshold on its size or height is always right); in the relative task no threshold on
    either key digit's size or height is right more than 80% of the time."""
    rows = []  # larger, higher, cue size, probe size, cue y, probe y
    for label, seed in itertools.product(range(len(CLASSES)), range(60)):
        _, (cue, probe) = _scene(label, seed, scene_type)
        _, size, height = CLASSES[label].replace("_colour", "").split("_")
        rows.append((size == "larger", height == "higher", cue.size[0], probe.size[0],
                     cue.y.mean(), probe.y.mean()))  # fmt: skip
    larger, higher, *measures = np.array(rows, dtype=float).T
    guesses = [
        _best_single_digit_guess(values, truth)
        for truth, pair in ((larger, measures[:2]), (higher, measures[2:]))
        for values in pair
    ]  # cue size, probe size, cue height, probe height
    if scene_type is RelationScene:
        assert guesses[1] == guesses[3] == 1.0
    else:
        assert max(guesses) < 0.8


def test_time_reversal_swaps_cue_and_probe():
    for label, reversed_label in TIME_REVERSED.items():
        colour, size, height = CLASSES[label].replace("_colour", "").split("_")
        r_colour, r_size, r_height = CLASSES[reversed_label].replace("_colour", "").split("_")
        assert r_colour == colour and r_size != size and r_height != height


@pytest.mark.parametrize("task", ["global", "global_relative"])
def test_global_videos_are_deterministic_and_cached(tmp_path, task):
    parameters = {"task": task, "videos": 24, "num_frames": 8, "frame_size": 40}
    first = make_demo_data(tmp_path / "a", workers=2, progress=False, **parameters)
    second = make_demo_data(tmp_path / "b", workers=1, progress=False, **parameters)
    assert (first.root / "classes.txt").read_text().split() == list(CLASSES)
    for path in sorted((first.root / "videos").rglob("*.mp4")):
        assert path.read_bytes() == (second.root / path.relative_to(first.root)).read_bytes()
    assert make_demo_data(first.root, progress=False, **parameters).seconds is None


def test_every_demo_task_can_be_asked_for_by_recipe_and_by_command():
    """register.py registers both global tasks: a recipe's `data.demo_task` takes them, and so
    does `effvid make-demo-data --task`."""
    from effvid.cli import build_parser
    from effvid.train.config import load_config

    assert {"local", "global", "global_relative"} <= set(TASKS)
    for task in TASKS:
        assert load_config({"data": {"demo_task": task}})["data"]["demo_task"] == task
    assert TASKS["global_relative"].scene is RelativeRelationScene
    assert (TASKS["global"].num_frames, TASKS["global"].frame_size) == (FRAMES, SIZE)
    for task in TASKS:
        assert build_parser().parse_args(["make-demo-data", "--task", task]).task == task
