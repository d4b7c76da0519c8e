"""The demo data's global task: every class is a relation between a cue and a probe that are never
on screen together, far apart across the frame, among distractors that look like them; the
videos are deterministic and cached like the local task's."""

import itertools

import numpy as np
import pytest

from effvid.data import make_demo_data
from effvid.data.demo_data import load_digit_scans
from effvid.data.relation_scenes import CLASSES, PALETTE, TIME_REVERSED, RelationScene

pytest.importorskip("sklearn", reason="the demo dataset draws its digits from scikit-learn")

FRAMES, SIZE = 24, 80


def _scene(label: int, seed: int):
    scene = RelationScene(
        load_digit_scans()[:200], num_frames=FRAMES, frame_size=SIZE,
        rng=np.random.default_rng([seed, label]),
    )  # fmt: skip
    return scene.distractors(), scene.actors(label)


@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_each_class_is_its_relation_between_cue_and_probe(label):
    colour, size, height = CLASSES[label].replace("_colour", "").split("_")
    for seed in range(5):
        distractors, (cue, probe) = _scene(label, seed)
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


def test_distractors_look_like_the_key_digits():
    colours, sizes = set(), []
    for label, seed in itertools.product(range(len(CLASSES)), range(4)):
        distractors, _ = _scene(label, seed)
        for sprite in distractors:
            colours.add(int(np.abs(PALETTE - sprite.colour).sum(axis=1).argmin()))
            sizes.append(sprite.size[0])
    assert colours == set(range(len(PALETTE)))  # every key colour is also a distractor colour
    assert min(sizes) < 13 and max(sizes) > 18  # small and large ones, as cue and probe


def test_time_reversal_swaps_cue_and_probe():
    for label, reversed_label in TIME_REVERSED.items():
        colour, size, height = CLASSES[label].replace("_colour", "").split("_")
        r_colour, r_size, r_height = CLASSES[reversed_label].replace("_colour", "").split("_")
        assert r_colour == colour and r_size != size and r_height != height


def test_global_videos_are_deterministic_and_cached(tmp_path):
    parameters = {"task": "global", "videos": 24, "num_frames": 8, "frame_size": 40}
    first = make_demo_data(tmp_path / "a", workers=2, progress=False, **parameters)
    second = make_demo_data(tmp_path / "b", workers=1, progress=False, **parameters)
    assert (first.root / "classes.txt").read_text().split() == list(CLASSES)
    for path in sorted((first.root / "videos").rglob("*.mp4")):
        assert path.read_bytes() == (second.root / path.relative_to(first.root)).read_bytes()
    assert make_demo_data(first.root, progress=False, **parameters).seconds is None
