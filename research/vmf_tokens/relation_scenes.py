"""The scenes of the demo dataset's "global" task: relations between two objects that are far
apart in space AND in time, among persistent distractors.

Every clip shows 3-5 distractor digits for its whole length, drifting slowly, and two key digits
that each appear for a while and fade away: the *cue* early in the clip (between 10% and 40% of
its length) on one side of the frame, the *probe* late (60% to 90%) on the other side and at
another height: 32-56 px apart across and 18-52 px up or down on an 80 px frame, so their centres
are more than half the frame apart (37-73 px; over 40 in 99.9% of clips). No frame shows both.
The class is three relations of the probe to the cue, 2 x 2 x 2 = 8 classes:

| factor  | values                                | what the model must relate              |
|---------|---------------------------------------|-----------------------------------------|
| colour  | `same` / `other` colour               | the colours of two moments, far apart   |
| size    | the probe `larger` / `smaller`        | sizes at two moments                    |
| height  | the probe `higher` / `lower`          | positions across the frame and time     |

The key digits look like the distractors (same digit scans, the same four colours, sizes in the
same range): only their coming and going tells them apart, so a single frame, or the frames in
any order, says nothing about the class. Only the colour relation needs both key digits,
though: sizes and heights are drawn from disjoint bands (a larger probe is 18-22 px against a
10-13 px cue, a higher probe in the top band), so once the probe is found its own size and
height give the other two relations (trained models learn those two and not colour:
ABLATIONS.md). Played backwards, cue and probe swap: `larger` <->
`smaller` and `higher` <-> `lower` (`TIME_REVERSED`). Lengths are in pixels of an 80 px frame
and scale with `frame_size`; times are fractions of the clip.

`RelativeRelationScene` (the `global_relative` task) draws the same classes with every relation
relative: one of the two key digits (either, at random) gets a size from 10-20 px and a height
from 26-54 px, the other that size times 1.25-1.4 (or divided by it) and that height 12-16 px
up or down, as the class says. Sizes and heights of probe and cue then overlap, so the best
guess of the size or height relation from either key digit alone is right about 71% or 74% of
the time (the colour relation: 50%), against 100% from both; and the key digits are 40-56 px
apart across (always more than half the frame).
"""

import itertools

import numpy as np

from effvid.data.demo_scenes import Scene, Sprite

FACTORS = (("same", "other"), ("larger", "smaller"), ("higher", "lower"))
CLASSES = tuple(
    f"{colour}_colour_{size}_{height}" for colour, size, height in itertools.product(*FACTORS)
)
# Played backwards the probe becomes the cue: size and height relations flip, colour stays.
TIME_REVERSED = {
    label: CLASSES.index(f"{colour}_colour_{FACTORS[1][1 - s]}_{FACTORS[2][1 - h]}")
    for label, (colour, s, h) in enumerate(itertools.product(FACTORS[0], range(2), range(2)))
}
PALETTE = np.array([[230, 60, 50], [60, 200, 70], [60, 110, 240], [235, 215, 60]], np.float32)
_REFERENCE_SIZE = 80
_CUE_TIME, _PROBE_TIME = (0.1, 0.4), (0.6, 0.9)
_SMALL, _LARGE = (10.0, 13.0), (18.0, 22.0)


class RelationScene(Scene):
    """Draws one clip of a relation class (see the module docstring)."""

    def __init__(self, digits, *, num_frames: int, frame_size: int, rng) -> None:
        super().__init__(digits, num_frames=num_frames, frame_size=frame_size, rng=rng)
        self.scale = frame_size / _REFERENCE_SIZE  # lengths below are on an 80 px frame

    def _colour(self, index: int) -> np.ndarray:
        return np.clip(PALETTE[index] + self.rng.uniform(-15, 15, size=3), 0, 255)

    def _visible(self, window: tuple[float, float]) -> np.ndarray:
        """(T,) opacity: fades in over 5% of the clip at `window[0]`, out at `window[1]`."""
        fade = 0.05
        rise = np.clip((self.time - window[0]) / fade, 0.0, 1.0)
        fall = np.clip((window[1] - self.time) / fade, 0.0, 1.0)
        return np.minimum(rise, fall)

    def sizes(self, larger: bool) -> tuple[float, float]:
        """(cue, probe) sizes: one from the small band, the other from the large band."""
        small, large = self._uniform(*_SMALL), self._uniform(*_LARGE)
        return (small, large) if larger else (large, small)

    near_side, far_side = (12.0, 24.0), (56.0, 68.0)  # cue and probe x: 32-56 px apart

    def across(self) -> tuple[float, float]:
        """(cue, probe) x: opposite sides, either side first."""
        cue_x, probe_x = self._uniform(*self.near_side), self._uniform(*self.far_side)
        if self.rng.random() < 0.5:
            cue_x, probe_x = _REFERENCE_SIZE - cue_x, _REFERENCE_SIZE - probe_x
        return cue_x, probe_x

    def heights(self, higher: bool) -> tuple[float, float]:
        """(cue, probe) y: one in the top band, the other in the bottom band, 18-52 px apart."""
        top, bottom = self._uniform(14, 32), self._uniform(50, 66)
        return (bottom, top) if higher else (top, bottom)

    def distractor_size(self) -> float:
        """From the small or the large band, as the key digits."""
        return self._uniform(*(_SMALL if self.rng.random() < 0.5 else _LARGE))

    def actors(self, label: int) -> list[Sprite]:
        """The cue and the probe of class `label`."""
        same_colour, larger, higher = (
            CLASSES[label].split("_")[0] == "same",
            "_larger_" in CLASSES[label],
            CLASSES[label].endswith("higher"),
        )
        cue_colour = int(self.rng.integers(len(PALETTE)))
        others = [c for c in range(len(PALETTE)) if c != cue_colour]
        probe_colour = cue_colour if same_colour else int(self.rng.choice(others))
        cue_size, probe_size = self.sizes(larger)
        cue_x, probe_x = self.across()
        cue_y, probe_y = self.heights(higher)
        sprites = []
        for (x, y), size, colour, window in (
            ((cue_x, cue_y), cue_size, cue_colour, _CUE_TIME),
            ((probe_x, probe_y), probe_size, probe_colour, _PROBE_TIME),
        ):
            drift = self._direction() * self._uniform(0, 3)
            path = np.array([x, y]) + (self.time[:, None] - 0.5) * drift
            sprite = self._sprite(path, size, self._visible(window))
            sprite.colour = self._colour(colour)
            sprites.append(sprite)
        return sprites

    def distractors(self) -> list[Sprite]:
        """3-5 digits of the same colours and sizes, visible for the whole clip."""
        sprites = []
        for _ in range(int(self.rng.integers(3, 6))):
            start = self.rng.uniform(8, 72, size=2)
            path = start + self.time[:, None] * self._direction() * self._uniform(0, 6)
            size = self.distractor_size()
            sprite = self._sprite(path, size, 1.0)
            sprite.colour = self._colour(int(self.rng.integers(len(PALETTE))))
            sprites.append(sprite)
        return sprites


class RelativeRelationScene(RelationScene):
    """The same classes with relative sizes and heights (see the module docstring)."""

    near_side, far_side = (12.0, 20.0), (60.0, 68.0)  # 40-56 px apart

    def _relative(
        self, band: tuple[float, float], step: tuple[float, float], probe_greater: bool, ratio: bool
    ) -> tuple[float, float]:
        """(cue, probe) values, the probe's the greater if `probe_greater`: one of the two, at
        random, is drawn from `band`, the other is it times (`ratio`) or plus a `step`."""
        anchor, amount = self._uniform(*band), self._uniform(*step)
        up = anchor * amount if ratio else anchor + amount
        down = anchor / amount if ratio else anchor - amount
        if self.rng.random() < 0.5:  # the cue is the anchor
            return anchor, up if probe_greater else down
        return (down if probe_greater else up), anchor

    def sizes(self, larger: bool) -> tuple[float, float]:
        return self._relative((10.0, 20.0), (1.25, 1.4), larger, ratio=True)

    def heights(self, higher: bool) -> tuple[float, float]:
        return self._relative((26.0, 54.0), (12.0, 16.0), not higher, ratio=False)  # y grows down

    def distractor_size(self) -> float:
        """Over the key digits' whole range, 7-28 px."""
        return self._uniform(7.0, 28.0)
