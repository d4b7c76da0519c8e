"""The scenes of the built-in demo dataset: real handwritten digits (scikit-learn's `load_digits`,
8x8 scans) animated into short colour clips whose class is an action in time.

| label | class            | what happens (two actor digits, A and B)          | reversed |
|-------|------------------|---------------------------------------------------|----------|
| 0     | approaching      | A and B move towards each other, along any axis   | 1        |
| 1     | separating       | A and B move apart                                | 0        |
| 2     | big_chases_small | both move the same way, the bigger digit behind   | 3        |
| 3     | small_chases_big | both move the same way, the smaller digit behind  | 2        |
| 4     | one_stops        | both move; A stops half-way while B goes on       | 5        |
| 5     | one_starts       | B moves; A stands still, then starts half-way     | 4        |
| 6     | growing          | A grows in place (zooms in) while B moves across  | 7        |
| 7     | shrinking        | A shrinks in place while B moves across           | 6        |
| 8     | appearing        | A fades in while B moves across                   | 9        |
| 9     | disappearing     | A fades out while B moves across                  | 8        |

Every class needs time: a single frame shows two digits somewhere, at some size and opacity, and
playing a clip backwards turns each class into the one in the "reversed" column, so a model that
does better than chance on both has learned the order of events. Classes 0-5 are relations across
the frame (who moves towards whom, which one leads, which one stops), the kind of global
spatio-temporal reasoning a few global tokens are for. No class changes under a horizontal flip.

Nuisance, all drawn per clip: digit identities, sizes (9-23 px on 64 px frames), tilts and colours;
directions (any angle), onset, duration and speed of each motion; 2-4 faint, smaller distractor
digits drifting slowly; a textured background with static clutter shapes; camera shake, flicker
and sensor noise. Sizes and distances scale with `frame_size`; motions scale with `num_frames`.
"""

from dataclasses import dataclass

import numpy as np

CLASSES = (
    "approaching",
    "separating",
    "big_chases_small",
    "small_chases_big",
    "one_stops",
    "one_starts",
    "growing",
    "shrinking",
    "appearing",
    "disappearing",
)
# The class a clip of each class becomes when played backwards.
TIME_REVERSED = {0: 1, 1: 0, 2: 3, 3: 2, 4: 5, 5: 4, 6: 7, 7: 6, 8: 9, 9: 8}

# Lengths below are in pixels of a 64 px frame; `Scene` scales them.
_REFERENCE_SIZE = 64
_MARGIN = 2.0


@dataclass
class Sprite:
    """One digit over a clip: centre (x, y), side length and opacity per frame, all (T,)."""

    image: np.ndarray  # (10, 10) float in [0, 1], the 8x8 scanned digit with a blank border
    colour: np.ndarray  # (3,) float in [0, 255]
    x: np.ndarray
    y: np.ndarray
    size: np.ndarray
    opacity: np.ndarray
    tilt: float  # radians, fixed over the clip


class Scene:
    """Draws one clip of a class. `digits` are the 8x8 scans allowed for this split."""

    def __init__(
        self, digits: np.ndarray, *, num_frames: int, frame_size: int, rng: np.random.Generator
    ) -> None:
        self.digits = digits
        self.num_frames = num_frames
        self.frame_size = frame_size
        self.scale = frame_size / _REFERENCE_SIZE
        self.rng = rng
        self.time = np.linspace(0.0, 1.0, num_frames)

    # -- random pieces ---------------------------------------------------------------------------
    def _uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    def _direction(self) -> np.ndarray:
        angle = self._uniform(0, 2 * np.pi)
        return np.array([np.cos(angle), np.sin(angle)])

    def _progress(self, start: float | None = None, end: float | None = None) -> np.ndarray:
        """(T,) from 0 to 1 over [start, end] of the clip (random onset and duration if not
        given), linear or eased: the speed of a motion varies from clip to clip."""
        start = self._uniform(0.0, 0.2) if start is None else start
        end = self._uniform(0.8, 1.0) if end is None else end
        ramp = np.clip((self.time - start) / max(end - start, 1e-6), 0.0, 1.0)
        if self.rng.random() < 0.5:
            ramp = ramp * ramp * (3 - 2 * ramp)
        return ramp

    def _sprite(
        self, path: np.ndarray, size: float | np.ndarray, opacity: float | np.ndarray = 1.0
    ) -> Sprite:
        """A random digit in a bright random colour following `path` (T, 2); lengths in pixels of
        a 64 px frame, sizes and opacities one value or one per frame."""
        hue = self._uniform(0, 1)
        colour = 255 * (0.55 + 0.45 * np.cos(2 * np.pi * (hue + np.array([0, 1 / 3, 2 / 3]))))
        return Sprite(
            image=np.pad(self.digits[self.rng.integers(len(self.digits))], 1),
            colour=np.maximum(colour, 60.0),
            x=path[:, 0] * self.scale,
            y=path[:, 1] * self.scale,
            size=np.broadcast_to(np.asarray(size) * self.scale, self.time.shape).copy(),
            opacity=np.broadcast_to(opacity, self.time.shape).copy(),
            tilt=self._uniform(-0.3, 0.3),
        )

    def _line(self, centre: np.ndarray, length: float, progress: np.ndarray) -> np.ndarray:
        """(T, 2) positions along a random direction, `length` long, centred on `centre`, as
        progress goes from 0 to 1."""
        return centre + (progress[:, None] - 0.5) * length * self._direction()

    def _fit(self, actors: list[Sprite]) -> None:
        """Move (and if needed shrink) the actors' paths to a random place inside the frame."""
        # Digits may touch the border: the 8x8 scans have blank margins.
        half = max(sprite.size.max() for sprite in actors) * 0.4 + _MARGIN * self.scale
        room = self.frame_size - 2 * half
        for axis in ("x", "y"):
            values = np.concatenate([getattr(sprite, axis) for sprite in actors])
            low, high = values.min(), values.max()
            shrink = min(1.0, room / max(high - low, 1e-6))
            extent = (high - low) * shrink
            slack = max(room - extent, 0.0)
            centre = half + extent / 2 + self._uniform(0, slack)
            for sprite in actors:
                coordinate = getattr(sprite, axis)
                coordinate[:] = (coordinate - (low + high) / 2) * shrink + centre

    # -- the classes -----------------------------------------------------------------------------
    def actors(self, label: int) -> list[Sprite]:
        """The two actor digits of a clip of class `label`, placed inside the frame."""
        size_a, size_b = self._uniform(12, 20), self._uniform(12, 20)
        # Where A and B move independently they start apart, so that they rarely cover each other.
        apart = self._direction() * 9
        if label in (0, 1):  # approaching / separating
            axis = self._direction()
            far, near = self._uniform(30, 40), self._uniform(12, 17)
            progress = self._progress() if label == 0 else 1 - self._progress()
            half_distance = (far + (near - far) * progress)[:, None] / 2 * axis
            return self._placed(
                self._sprite(-half_distance, size_a), self._sprite(half_distance, size_b)
            )
        if label in (2, 3):  # big chases small / small chases big
            heading = self._direction()
            gap = self._uniform(16, 21)
            path = (self._progress()[:, None] - 0.5) * self._uniform(16, 28) * heading
            big, small = self._uniform(19, 23), self._uniform(10, 13)
            leader, follower = (small, big) if label == 2 else (big, small)
            front = self._sprite(path + heading * gap / 2, leader)
            return self._placed(front, self._sprite(path - heading * gap / 2, follower))
        if label in (4, 5):  # one stops / one starts
            change = self._uniform(0.35, 0.65)
            part = self._progress(0.0, change) if label == 4 else self._progress(change, 1.0)
            first = self._sprite(self._line(apart, self._uniform(16, 28), part), size_a)
            second = self._line(-apart, self._uniform(20, 32), self._progress())
            return self._placed(first, self._sprite(second, size_b))
        # 6-9: A changes size or opacity in place, B moves across.
        still = np.tile(apart + self.rng.uniform(-3, 3, size=2), (self.num_frames, 1))
        mover = self._sprite(self._line(-apart, self._uniform(20, 32), self._progress()), size_b)
        change = self._progress() if label in (6, 8) else 1 - self._progress()
        if label in (6, 7):
            small, large = self._uniform(9, 12), self._uniform(21, 26)
            changing = self._sprite(still, small + (large - small) * change)
        else:
            changing = self._sprite(still, size_a, opacity=change)
        return self._placed(changing, mover)

    def _placed(self, first: Sprite, second: Sprite) -> list[Sprite]:
        actors = [first, second]
        self._fit(actors)
        return actors

    def distractors(self) -> list[Sprite]:
        """2-4 faint small digits anywhere, drifting slowly."""
        sprites = []
        for _ in range(int(self.rng.integers(2, 5))):
            start = self.rng.uniform(8, 56, size=2)
            drift = self._direction() * self._uniform(0, 4)
            path = start + self.time[:, None] * drift
            sprites.append(self._sprite(path, self._uniform(7, 10), self._uniform(0.3, 0.55)))
        return sprites

    # -- drawing ---------------------------------------------------------------------------------
    def background(self) -> np.ndarray:
        """float (S + 4, S + 4, 3): a dim gradient with texture and static clutter shapes; the
        border of 2 px on each side leaves room for camera shake."""
        side = self.frame_size + 4
        grid = np.linspace(0, 1, side)
        base, tint = self.rng.uniform(10, 70, size=3), self.rng.uniform(-30, 30, size=3)
        angle = self._uniform(0, 2 * np.pi)
        ramp = np.cos(angle) * grid[None, :] + np.sin(angle) * grid[:, None]
        image = base + ramp[..., None] * tint + self.rng.normal(0, 5, size=(side, side, 1))
        for _ in range(int(self.rng.integers(3, 7))):
            colour = self.rng.uniform(20, 110, size=3)
            top, left = self.rng.integers(0, side, size=2)
            height, width = self.rng.integers(2, max(3, side // 4), size=2)
            image[top : top + height, left : left + width] = colour
        return image

    def render(self, label: int) -> np.ndarray:
        """uint8 (T, S, S, 3), the frames of one clip of class `label`."""
        sprites = self.distractors() + self.actors(label)
        background = self.background()
        shake = self.rng.integers(-1, 2, size=(self.num_frames, 2)).cumsum(0).clip(-2, 2) + 2
        flicker = 1 + self.rng.normal(0, 0.03, size=self.num_frames)
        size = self.frame_size
        frames = np.empty((self.num_frames, size, size, 3), dtype=np.uint8)
        for t in range(self.num_frames):
            dy, dx = shake[t]
            canvas = background[dy : dy + size, dx : dx + size].copy()
            for sprite in sprites:
                _draw(canvas, sprite, t, shift=(2 - dx, 2 - dy))
            canvas = canvas * flicker[t] + self.rng.normal(0, 4, size=canvas.shape)
            frames[t] = np.clip(canvas, 0, 255)
        return frames


def _draw(canvas: np.ndarray, sprite: Sprite, t: int, shift: tuple[int, int]) -> None:
    """Alpha-blend frame t of `sprite` into `canvas` (S, S, 3), bilinear from the 8x8 scan."""
    size, opacity = sprite.size[t], sprite.opacity[t]
    centre_x, centre_y = sprite.x[t] + shift[0], sprite.y[t] + shift[1]
    reach = size * 0.75
    height, width = canvas.shape[:2]
    x0, x1 = max(int(centre_x - reach), 0), min(int(centre_x + reach) + 1, width)
    y0, y1 = max(int(centre_y - reach), 0), min(int(centre_y + reach) + 1, height)
    if opacity <= 0 or x0 >= x1 or y0 >= y1:
        return
    dx = np.arange(x0, x1) + 0.5 - centre_x
    dy = (np.arange(y0, y1) + 0.5 - centre_y)[:, None]
    # Pixel -> scan coordinates: undo the tilt, then 8 scan pixels per `size` frame pixels; the
    # scan is padded by one blank pixel on each side, so its centre is at 4.5.
    cos, sin = np.cos(sprite.tilt) * 8 / size, np.sin(sprite.tilt) * 8 / size
    u = np.clip(cos * dx + sin * dy + 4.5, 0, 8.999)
    v = np.clip(cos * dy - sin * dx + 4.5, 0, 8.999)
    u0, v0 = u.astype(int), v.astype(int)
    fu, fv = u - u0, v - v0
    scan = sprite.image
    top = scan[v0, u0] * (1 - fu) + scan[v0, u0 + 1] * fu
    bottom = scan[v0 + 1, u0] * (1 - fu) + scan[v0 + 1, u0 + 1] * fu
    alpha = (top * (1 - fv) + bottom * fv) * opacity
    region = canvas[y0:y1, x0:x1]
    region += alpha[..., None] * (sprite.colour - region)
