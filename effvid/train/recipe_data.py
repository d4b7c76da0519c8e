"""The `data` section of a recipe -> training and evaluation datasets.

Training items are one random clip per video with augmentation; evaluation items are the test
views (temporal clips x spatial crops) of every video. The built-in demo dataset is generated on
first use and then read like any list-file dataset.
"""

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from effvid.data import (
    ColorJitter,
    EvalClips,
    Preprocessing,
    RandAugment,
    TrainTransform,
    VideoDataset,
    VideoList,
    make_demo_data,
    read_classes_file,
    read_folder_tree,
    read_hmdb51,
    read_kinetics,
    read_list_file,
    read_ssv2,
    read_ucf101,
)
from effvid.data.frame_cache import FrameCache, build_frame_cache
from effvid.distributed import barrier
from effvid.models import ModelCard
from effvid.train.config import ConfigError

logger = logging.getLogger("effvid.data")

DEMO_SPLITS = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}


@dataclass(frozen=True)
class EvalViews:
    clips: int
    crops: int

    @property
    def total(self) -> int:
        return self.clips * self.crops


def resolve_views(evaluation: Mapping, card: ModelCard) -> EvalViews:
    """The recipe's test views, or the model card's where the recipe leaves them unset."""
    return EvalViews(evaluation["clips"] or card.test_clips, evaluation["crops"] or card.test_crops)


def demo_data_section(data: Mapping, progress: bool = True) -> dict:
    """The `data` section for the built-in demo dataset (generated here if absent), as a list
    file dataset. `demo_task` picks the task, `demo_videos` its size (default: the
    generator's)."""
    size = {"videos": data["demo_videos"]} if data["demo_videos"] else {}
    demo = make_demo_data(task=data["demo_task"], **size, progress=progress)
    return {
        **data,
        "format": "list",
        "root": str(demo.root),
        "classes": str(demo.root / "classes.txt"),
        **{split: str(demo.root / name) for split, name in DEMO_SPLITS.items()},
    }


def read_split(data: Mapping, which: str, classes: Sequence[str] | None = None) -> VideoList:
    """The videos of split `which` ('train', 'val' or 'test') in `data['format']`.

    `classes` (the training split's) are the label space of every other split: a split naming a
    class outside them is an error, one lacking some of them is fine (and says so in the log).
    """
    path = data.get(which)
    if not path:
        raise ConfigError(f"the recipe has no 'data.{which}' annotation for this run")
    root = data["root"]
    if root is not None and not Path(root).is_dir():
        raise ConfigError(f"data.root {root!r} does not exist or is not a folder")
    videos = _read_annotations(data, which, path, classes)
    if classes is not None:
        if list(videos.classes) != list(classes):
            extra = sorted(set(videos.classes) - set(classes))
            detail = f"classes the training split lacks: {extra}" if extra else "another order"
            raise ConfigError(
                f"the {which} split ({videos.source}) does not use the training classes: {detail}"
            )
        present = {record.label for record in videos.records}
        absent = [name for label, name in enumerate(classes) if label not in present]
        if absent:
            logger.info(
                "the %s split has no video of %d training classes: %s",
                which,
                len(absent),
                ", ".join(absent),
            )
    return videos


def _read_annotations(
    data: Mapping, which: str, path: str, classes: Sequence[str] | None
) -> VideoList:
    """`data.classes` is honoured by every format: the dataset's own class index for SSv2
    (labels.json) and UCF101 (classInd.txt), a classes file (one name per line, in label order)
    for the others; without it the training split's classes, or the labels found."""
    fmt, root = data["format"], data["root"]
    if fmt == "ssv2":
        return read_ssv2(path, root, labels_json=data["classes"])
    if fmt == "ucf101":
        return read_ucf101(path, root or Path(path).parent, class_index_file=data["classes"])
    listed = read_classes_file(data["classes"]) if data["classes"] else classes
    if fmt == "list":
        return read_list_file(path, root, classes=listed)
    if fmt == "kinetics":
        return read_kinetics(path, root, classes=listed)
    if fmt == "hmdb51":
        subset = "train" if which == "train" else "test"
        return read_hmdb51(path, root, split=data["split"], subset=subset, classes=listed)
    if fmt == "folder":
        return read_folder_tree(path, classes=listed)
    raise ConfigError(f"data.format {fmt!r} has no reader (did you mean 'demo'?)")


def recipe_preprocessing(data: Mapping, card: ModelCard) -> Preprocessing:
    """The clips a recipe makes (what a checkpoint records), mean/std defaulting to the card's."""
    return Preprocessing(
        num_frames=data["num_frames"],
        sampling_rate=data["sampling_rate"],
        crop_size=data["crop_size"],
        short_side=data["short_side"],
        mean=tuple(data["mean"] or card.mean),
        std=tuple(data["std"] or card.std),
        sampling=data["sampling"],
    )


def frame_cache(data: Mapping, videos: VideoList, *, progress: bool = True) -> FrameCache | None:
    """The decoded frames of `videos` (built on first use) when the recipe asks for them
    (`data.frame_cache`). Under torchrun the main process builds it while the others wait."""
    if not data["frame_cache"]:
        return None
    cache_root = Path(os.environ.get("EFFVID_CACHE_DIR") or Path.home() / ".cache" / "effvid")
    rank = int(os.environ.get("RANK", "0"))
    if rank > 0:
        barrier()
    cache = build_frame_cache(videos, cache_root, workers=data["workers"] or None,
                              progress=progress and rank == 0)  # fmt: skip
    if rank == 0:
        barrier()
    return cache


def train_dataset(
    data: Mapping,
    card: ModelCard,
    videos: VideoList,
    bad_video_report: Path | None = None,
    *,
    cache: FrameCache | None = None,
) -> VideoDataset:
    """One augmented random clip per video (read from `cache` when given)."""
    preprocessing = recipe_preprocessing(data, card)
    jitter = data["color_jitter"]
    transform = TrainTransform(
        crop_size=data["crop_size"],
        scale_jitter=tuple(data["scale_jitter"]) if data["scale_jitter"] else None,
        area=tuple(data["crop_area"]),
        aspect_ratio=tuple(data["crop_aspect"]),
        flip=data["flip"],
        color_jitter=ColorJitter(brightness=jitter, contrast=jitter, saturation=jitter)
        if jitter
        else None,
        randaugment=RandAugment(**data["randaugment"]) if data["randaugment"] else None,
        mean=preprocessing.mean,
        std=preprocessing.std,
    )
    return VideoDataset(
        videos,
        sampler=preprocessing.sampler(),
        transform=transform,
        training=True,
        max_bad_fraction=data["max_bad_fraction"],
        bad_video_report=bad_video_report,
        frame_cache=cache,
    )


def eval_dataset(
    data: Mapping,
    card: ModelCard,
    videos: VideoList,
    views: EvalViews,
    bad_video_report: Path | None = None,
    *,
    cache: FrameCache | None = None,
) -> VideoDataset:
    """Every test view of every video: `views.clips` clips x `views.crops` crops, made as
    `EvalClips` makes them for prediction (read from `cache` when given)."""
    clips = EvalClips(recipe_preprocessing(data, card))
    return VideoDataset(
        videos,
        sampler=clips.sampler,
        transform=clips.transform,
        training=False,
        temporal_views=views.clips,
        spatial_views=views.crops,
        crop_size=clips.crop_size,
        max_bad_fraction=data["max_bad_fraction"],
        bad_video_report=bad_video_report,
        frame_cache=cache,
    )
