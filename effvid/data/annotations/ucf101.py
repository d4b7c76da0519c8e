"""UCF101 split files, as distributed with the dataset (`ucfTrainTestlist/`).

    classInd.txt     1 ApplyEyeMakeup          (1-based labels)
    trainlist01.txt  ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1
    testlist01.txt   ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi

Labels become 0-based. A test list has no labels: the class is the video's folder. Paths are
relative to `video_root` (the `UCF-101/` folder); a frame folder without the suffix also counts.
"""

from pathlib import Path

from effvid.data.annotations.records import (
    AnnotationError,
    ClassNames,
    Entry,
    VideoList,
    existing_video,
    make_video_list,
    read_lines,
)


def read_ucf101_classes(class_index_file: str | Path) -> list[str]:
    """Class names in label order from `classInd.txt` (`<1-based label> <name>` per line)."""
    names = []
    for line, text in read_lines(class_index_file):
        fields = text.split()
        if len(fields) != 2 or fields[0] != str(len(names) + 1):
            raise AnnotationError(class_index_file, line, f"expected '{len(names) + 1} <class>'")
        names.append(fields[1])
    return names


def read_ucf101(
    split_file: str | Path,
    video_root: str | Path,
    *,
    class_index_file: str | Path | None = None,
) -> VideoList:
    """Read `trainlist0N.txt` or `testlist0N.txt`; `class_index_file` defaults to the
    `classInd.txt` beside it."""
    class_index_file = class_index_file or Path(split_file).parent / "classInd.txt"
    classes = ClassNames(read_ucf101_classes(class_index_file))
    entries = []
    for line, text in read_lines(split_file):
        fields = text.split()
        if len(fields) not in (1, 2) or "/" not in fields[0]:
            raise AnnotationError(split_file, line, "expected '<class>/<video> [<label>]'")
        relative = fields[0]
        label = classes.label(relative.split("/")[0], split_file, line)
        if len(fields) == 2:
            if not fields[1].isdigit():
                raise AnnotationError(split_file, line, f"label {fields[1]!r} is not a number")
            given = classes.check(int(fields[1]) - 1, split_file, line)
            if given != label:
                raise AnnotationError(
                    split_file, line, f"label {given + 1} is not the class of folder {label + 1}"
                )
        path = existing_video(Path(video_root, relative))
        entries.append(Entry(path, label, Path(relative).stem, str(split_file), line))
    return make_video_list(entries, classes.names, split_file)
