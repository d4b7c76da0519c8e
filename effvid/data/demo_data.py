"""The built-in demo dataset: real mp4 files of animated handwritten digits, generated once into
a cache folder and reused. Its task, `local` (`demo_scenes`): ten time-ordered actions of two
digits (approaching, separating, one stops, ...); 16 frames of 64x64 px. Other tasks (a `Scene`
subclass, its classes and default size) join with `register_demo_task`.

    <root>/manifest.json              generation parameters; the cache is valid when they match
    <root>/classes.txt                one class name per line, in label order
    <root>/{train,val,test}.txt       list files: `videos/train/00042.mp4 7`
    <root>/videos/{train,val,test}/   H.264 mp4 (yuv420p), `num_frames` frames at 12 fps

The 1797 digit scans of scikit-learn's `load_digits` are split 70/15/15 into train, val and test
before any video is drawn: no scan appears in two splits. The videos are split in the same
proportions, classes balanced. Everything follows from `seed`: the same parameters give the same
videos on any machine and with any number of worker processes.

Default size of the local task, 16 frames of 64x64 and 3000 videos: motion over 16 steps is
smooth enough for the "stops half-way" classes, 64 px leaves room for two actors and
distractors, and a small 3-D model's cost grows with T x H x W, so 16x64x64 costs a third of one
8x160x160 view.
"""

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from effvid.data import demo_scenes as local_scenes
from effvid.data.annotations.list_file import read_classes_file, read_list_file
from effvid.data.dataset import VideoDataset
from effvid.data.demo_scenes import Scene
from effvid.data.encoding import write_video
from effvid.data.progress import progress_bar
from effvid.data.sampling import DenseSampler
from effvid.data.staging import publish, staging_folder
from effvid.data.transforms import ClipTransform, EvalTransform, TrainTransform
from effvid.errors import InputError

GENERATOR_VERSION = 2  # 2: the task is a parameter
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
FPS = 12
# One encoder thread: the worker processes are the parallelism (x264 threads cost ~5 ms a file).
# x264's macroblock-tree rate control gives different files from the same frames from run to run
# (seen with its AVX-512 code); without it the encoding is repeatable.
ENCODER_OPTIONS = {"crf": "18", "preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
DEMO_MEAN = (0.5, 0.5, 0.5)
DEMO_STD = (0.25, 0.25, 0.25)


@dataclass(frozen=True)
class DemoTask:
    """One family of demo scenes: how a clip is drawn, its classes and default size."""

    scene: type[Scene]
    classes: tuple[str, ...]
    time_reversed: dict[int, int]  # the class a clip becomes when played backwards
    num_frames: int
    frame_size: int


TASKS: dict[str, DemoTask] = {
    # time-ordered actions of two digits, mostly near each other (demo_scenes)
    "local": DemoTask(Scene, local_scenes.CLASSES, local_scenes.TIME_REVERSED, 16, 64),
}


def register_demo_task(name: str, task: DemoTask) -> None:
    """Make `task` the demo dataset's task `name`, for `make_demo_data(task=name)` and a recipe's
    `data.demo_task`. Registering the same task again under its name does nothing; another task
    under a taken name is a ValueError."""
    if not isinstance(task, DemoTask):
        raise TypeError(f"a demo task is a DemoTask, got {type(task).__name__}")
    if TASKS.get(name, task) != task:
        raise ValueError(f"demo task {name!r} is registered already")
    TASKS[name] = task


@dataclass(frozen=True)
class DemoParameters:
    """Everything a demo dataset follows from; its hash names the default cache folder.
    `num_frames` and `frame_size` default to the task's (local: 16 x 64 px)."""

    videos: int = 3000
    task: str = "local"
    num_frames: int | None = None
    frame_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(
                f"demo task {self.task!r} is not a registered demo task "
                f"(registered: {', '.join(TASKS)})"
            )
        task = TASKS[self.task]
        if self.num_frames is None:
            object.__setattr__(self, "num_frames", task.num_frames)
        if self.frame_size is None:
            object.__setattr__(self, "frame_size", task.frame_size)
        if self.videos < 3 * len(task.classes):
            raise ValueError(
                f"videos must be at least {3 * len(task.classes)} (every class in each split)"
            )
        if self.num_frames < 4 or self.frame_size < 32 or self.frame_size % 2:
            raise ValueError("num_frames must be >= 4 and frame_size an even number >= 32")

    @property
    def classes(self) -> tuple[str, ...]:
        return TASKS[self.task].classes

    def manifest(self) -> dict:
        return {
            "generator_version": GENERATOR_VERSION,
            "parameters": asdict(self),
            "fps": FPS,
            "encoder": {"codec": "libx264", "pix_fmt": "yuv420p", **ENCODER_OPTIONS},
        }

    def digest(self) -> str:
        text = json.dumps(self.manifest(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def split_sizes(self) -> list[int]:
        sizes = [round(self.videos * fraction) for fraction in SPLIT_FRACTIONS[1:]]
        return [self.videos - sum(sizes), *sizes]


@dataclass(frozen=True)
class DemoData:
    """Where a demo dataset lies, its split sizes, and how long it took (None: reused)."""

    root: Path
    parameters: DemoParameters
    split_sizes: dict[str, int]
    seconds: float | None

    def summary(self) -> str:
        sizes = ", ".join(f"{split} {count}" for split, count in self.split_sizes.items())
        how = "reused" if self.seconds is None else f"generated in {self.seconds:.1f} s"
        return f"demo dataset in {self.root} ({sizes} videos; {how})"


def default_demo_root(parameters: DemoParameters) -> Path:
    """`$EFFVID_CACHE_DIR` (default `~/.cache/effvid`) / `demo-<hash of the parameters>`."""
    cache = os.environ.get("EFFVID_CACHE_DIR") or Path.home() / ".cache" / "effvid"
    return Path(cache) / f"demo-{parameters.digest()}"


def load_digit_scans() -> np.ndarray:
    """float (1797, 8, 8) in [0, 1]: scikit-learn's handwritten digits (shipped, no download)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the demo dataset draws its digits from scikit-learn: pip install scikit-learn"
        ) from None
    return load_digits().images.astype(np.float32) / 16.0


def _split_digits(digits: np.ndarray, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(len(digits))
    bounds = np.cumsum([round(len(digits) * fraction) for fraction in SPLIT_FRACTIONS[:-1]])
    return [digits[part] for part in np.split(order, bounds)]


def _render_videos(task: tuple) -> int:
    """Render and encode the videos `indices` of one split (one worker task); returns how many."""
    root, parameters, scene_class, split, digits, indices = task
    for index in indices:
        rng = np.random.default_rng([parameters.seed, SPLITS.index(split), index])
        scene = scene_class(
            digits, num_frames=parameters.num_frames, frame_size=parameters.frame_size, rng=rng
        )
        frames = scene.render(index % len(parameters.classes))
        path = Path(root, "videos", split, f"{index:05d}.mp4")
        write_video(path, frames, fps=FPS, options=ENCODER_OPTIONS)
    return len(indices)


def _is_valid_cache(root: Path, parameters: DemoParameters) -> bool:
    manifest = root / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except json.JSONDecodeError:
        return False
    if recorded.get("generator") != parameters.manifest():
        return False
    sizes = parameters.split_sizes()
    return all(
        (root / f"{split}.txt").is_file()
        and sum(1 for _ in (root / "videos" / split).glob("*.mp4")) == size
        for split, size in zip(SPLITS, sizes, strict=True)
    )


def make_demo_data(
    root: str | Path | None = None,
    *,
    workers: int | None = None,
    progress: bool = True,
    **parameters,
) -> DemoData:
    """Generate the demo dataset into `root` (default: `default_demo_root`) unless a complete one
    with the same parameters is already there. `parameters` are `DemoParameters` fields (videos,
    num_frames, frame_size, seed); the others keep their defaults. `workers` processes render and
    encode (default: one per CPU core). A `root` that holds anything but a demo dataset is left
    alone (an error)."""
    parameters = DemoParameters(**parameters)
    root = Path(root) if root is not None else default_demo_root(parameters)
    sizes = dict(zip(SPLITS, parameters.split_sizes(), strict=True))
    if _is_valid_cache(root, parameters):
        return DemoData(root, parameters, sizes, None)
    if root.exists() and any(root.iterdir()) and not (root / "manifest.json").exists():
        raise FileExistsError(f"{root} exists and is not an effvid demo dataset: not replacing it")

    start = time.perf_counter()
    partial = staging_folder(root)
    digit_splits = _split_digits(load_digit_scans(), parameters.seed)
    tasks = []
    for split, digits in zip(SPLITS, digit_splits, strict=True):
        (partial / "videos" / split).mkdir(parents=True)
        indices = range(sizes[split])
        scene = TASKS[parameters.task].scene  # by reference: a registered task reaches any worker
        tasks += [
            (partial, parameters, scene, split, digits, indices[i : i + 25]) for i in indices[::25]
        ]
        lines = [f"videos/{split}/{i:05d}.mp4 {i % len(parameters.classes)}\n" for i in indices]
        (partial / f"{split}.txt").write_text("".join(lines))
    (partial / "classes.txt").write_text("".join(f"{name}\n" for name in parameters.classes))

    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    bar = progress_bar(parameters.videos, "demo videos", enabled=progress, unit="video")
    with multiprocessing.get_context().Pool(workers) as pool:
        for done in pool.imap_unordered(_render_videos, tasks):
            bar.update(done)
    bar.close()
    manifest = {
        "generator": parameters.manifest(),
        "split_sizes": sizes,
        "classes": parameters.classes,
    }
    (partial / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    publish(partial, root, done=lambda: _is_valid_cache(root, parameters))
    return DemoData(root, parameters, sizes, time.perf_counter() - start)


def load_demo_dataset(
    root: str | Path | None = None,
    *,
    mean: Sequence[float] = DEMO_MEAN,
    std: Sequence[float] = DEMO_STD,
    train_transform: ClipTransform | None = None,
    **parameters,
) -> tuple[VideoDataset, VideoDataset, VideoDataset]:
    """(train, val, test) datasets of the demo videos (generated first if needed). Items are
    whole clips, (3, num_frames, frame_size, frame_size) floats. Training augmentation by default:
    a mild random resized crop (area 0.7-1) and horizontal flips (no demo class changes under a
    flip); evaluation takes the frames as they are. `parameters` as for `make_demo_data`."""
    data = make_demo_data(root, **parameters)
    frame_size = data.parameters.frame_size
    classes = read_classes_file(data.root / "classes.txt")
    sampler = DenseSampler(num_frames=data.parameters.num_frames)
    if train_transform is None:
        train_transform = TrainTransform(
            crop_size=frame_size, mean=mean, std=std, area=(0.7, 1.0), aspect_ratio=(0.9, 1.1)
        )
    eval_transform = EvalTransform(short_side=frame_size, mean=mean, std=std)
    return tuple(
        VideoDataset(
            read_list_file(data.root / f"{split}.txt", classes=classes),
            sampler=sampler,
            transform=train_transform if split == "train" else eval_transform,
            training=split == "train",
        )
        for split in SPLITS
    )
