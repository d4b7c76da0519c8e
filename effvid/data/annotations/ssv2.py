"""Something-Something V2 annotations, as distributed by Qualcomm (formerly TwentyBN).

    labels.json      {"Approaching something with your camera": "0", ...}
    train.json       [{"id": "78687", "label": "holding potato next to vicks vaporub bottle",
                       "template": "Holding [something] next to [something]",
                       "placeholders": ["potato", "vicks vaporub bottle"]}, ...]
    validation.json  the same; test.json has only "id" (label -1)

The class of a video is its template with the brackets removed, looked up in labels.json. Videos are
`<id>.webm` anywhere below `video_root`, or frame folders named `<id>`. SSv2 classes are
direction-sensitive ("Pushing something from left to right"): train without horizontal flips.
"""

from pathlib import Path

from effvid.data.annotations.records import (
    AnnotationError,
    ClassNames,
    Entry,
    VideoList,
    index_videos,
    make_video_list,
    read_json_array,
    read_json_object,
)


def read_ssv2_classes(labels_json: str | Path) -> list[str]:
    """Class names in label order from `labels.json` (name -> label as a string)."""
    labels = read_json_object(labels_json)
    by_label: dict[int, str] = {}
    for name, label in labels.items():
        try:
            by_label[int(label)] = name
        except (TypeError, ValueError):
            raise AnnotationError(labels_json, None, f"label of {name!r} is not a number") from None
    if sorted(by_label) != list(range(len(labels))):
        raise AnnotationError(labels_json, None, f"labels are not 0..{len(labels) - 1}")
    return [by_label[label] for label in range(len(labels))]


def read_ssv2(
    annotation_json: str | Path,
    video_root: str | Path | None = None,
    *,
    labels_json: str | Path | None = None,
) -> VideoList:
    """Read `train.json`, `validation.json` or `test.json`; `labels_json` defaults to the
    `labels.json` beside it, `video_root` to its folder."""
    folder = Path(annotation_json).parent
    classes = ClassNames(read_ssv2_classes(labels_json or folder / "labels.json"))
    videos = index_videos(video_root if video_root is not None else folder)
    entries = []
    for line, item in read_json_array(annotation_json):
        if not isinstance(item, dict) or "id" not in item:
            raise AnnotationError(annotation_json, line, "expected an object with an 'id'")
        video_id = str(item["id"])
        if "template" in item:
            template = str(item["template"]).replace("[", "").replace("]", "")
            label = classes.label(template, annotation_json, line)
        else:
            label = -1
        entries.append(Entry(videos.get(video_id), label, video_id, str(annotation_json), line))
    return make_video_list(entries, classes.names, annotation_json)
