"""HMDB51 split files, as distributed (`testTrainMulti_7030_splits/`): one file per class and split.

    brush_hair_test_split1.txt    April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1

Codes: 1 = training, 2 = testing, 0 = not used in that split. The 51 classes, sorted by name, come
from the split file names (or, in their order, from the `classes` given); videos are
`<video_root>/<class>/<video>` (or frame folders of the video's name without the suffix).
"""

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from effvid.data.annotations.records import (
    AnnotationError,
    Entry,
    VideoList,
    existing_video,
    make_video_list,
    read_lines,
)
from effvid.errors import InputError

SUBSET_CODES = {"train": "1", "test": "2"}


def read_hmdb51(
    splits_dir: str | Path,
    video_root: str | Path,
    *,
    split: int = 1,
    subset: Literal["train", "test"] = "train",
    classes: Sequence[str] | None = None,
) -> VideoList:
    """Read split `split` (1, 2 or 3), the `subset` videos of every class. `classes` (a classes
    file's, or the training split's) fixes the label of each class; a split file of another
    class is an error."""
    if subset not in SUBSET_CODES:
        raise InputError(f"subset must be 'train' or 'test', not {subset!r}")
    pattern = re.compile(rf"(.+)_test_split{split}\.txt")
    split_files = {}
    for path in sorted(Path(splits_dir).glob(f"*_test_split{split}.txt")):
        split_files[pattern.fullmatch(path.name).group(1)] = path
    if not split_files:
        raise AnnotationError(splits_dir, None, f"no '*_test_split{split}.txt' files")
    if classes is None:
        classes = sorted(split_files)
    unknown = sorted(set(split_files) - set(classes))
    if unknown:
        raise AnnotationError(
            splits_dir, None, f"split files of classes {unknown} not among the {len(classes)} given"
        )
    entries = []
    for label, name in enumerate(classes):
        for line, text in read_lines(split_files[name]) if name in split_files else ():
            fields = text.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise AnnotationError(split_files[name], line, "expected '<video> <0|1|2>'")
            if fields[1] == SUBSET_CODES[subset]:
                path = existing_video(Path(video_root, name, fields[0]))
                where = str(split_files[name])
                entries.append(Entry(path, label, Path(fields[0]).stem, where, line))
    return make_video_list(entries, classes, splits_dir)
