"""How far a reduced-precision copy (int8, bf16) of an exported file is from its fp32 file: top-1
agreement on real clips and, where the clips are labelled, the accuracy of each; a copy is kept
only when it agrees on at least `min_agreement` of the clips and loses at most `max_accuracy_drop`
points of accuracy.

    clips   (1, 3, [T,] S, S) each, preprocessed as the file says (`centre_clip`)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from effvid.deploy.onnx_export import OnnxExportError, centre_clip
from effvid.inference.exported_files import open_runner, read_exported_model

MIN_AGREEMENT = 0.99
MAX_ACCURACY_DROP = 1.0  # points


@dataclass(frozen=True)
class LabelledClips:
    """Clips with their labels as indices of the model's classes (None: unlabelled)."""

    clips: list[torch.Tensor]
    labels: list[int] | None
    source: str  # what they were made from, for the report


def labelled_clips(
    annotations: str | Path, path: str | Path, input_shape: Sequence[int], limit: int
) -> LabelledClips:
    """The centre clips of up to `limit` videos of a labelled set (a folder tree or an
    annotation file, as `effvid eval` reads them), labelled by the exported file's class names
    (a list file of bare label indices, without class names, by index); OnnxExportError when
    the set names a class the model does not have."""
    from effvid.data.annotations import load_annotations

    info = read_exported_model(path)
    videos = load_annotations(annotations)
    index = {name: i for i, name in enumerate(info.class_names)}
    if videos.classes == [str(i) for i in range(len(videos.classes))]:
        index = {name: i for i, name in enumerate(videos.classes)}  # bare label indices
    missing = sorted(set(videos.classes) - set(index))
    if missing:
        raise OnnxExportError(
            f"{annotations} has classes the model does not know ({', '.join(missing[:3])}): "
            "check on data labelled with the model's class names"
        )
    records = videos.records[:: max(1, len(videos.records) // limit)][:limit]  # every class
    clips = [centre_clip(r.path, info.preprocessing, input_shape) for r in records]
    labels = [index[videos.classes[r.label]] for r in records]
    return LabelledClips(clips, labels, f"{len(records)} labelled videos of {annotations}")


@dataclass(frozen=True)
class PrecisionCheck:
    """A reduced-precision copy against its fp32 file on the same clips."""

    path: Path
    precision: str
    clips: int
    source: str
    top1_agreement: float
    max_abs_difference: float
    fp32_accuracy: float | None
    accuracy: float | None

    @property
    def accuracy_drop(self) -> float | None:
        """Points of top-1 accuracy lost (None without labels)."""
        if self.accuracy is None or self.fp32_accuracy is None:
            return None
        return 100 * (self.fp32_accuracy - self.accuracy)

    def __str__(self) -> str:
        text = (
            f"wrote {self.path} ({self.precision}): top-1 agreement with fp32 "
            f"{100 * self.top1_agreement:.1f}% on {self.source}, max |{self.precision} - fp32| "
            f"logit {self.max_abs_difference:.3g}"
        )
        if self.accuracy_drop is not None:
            text += (
                f", accuracy {100 * self.accuracy:.1f}% (fp32 {100 * self.fp32_accuracy:.1f}%, "
                f"{self.accuracy_drop:+.1f} points lost)"
            )
        return text


def compare_precision(
    fp32: str | Path,
    copy: str | Path,
    precision: str,
    data: LabelledClips,
    *,
    runtime: str | None = None,
) -> PrecisionCheck:
    """Run both files on `data` (in `runtime`, default the files' own) and compare them."""
    reference, candidate = open_runner(fp32, runtime), open_runner(copy, runtime)
    first = np.concatenate([reference(clip) for clip in data.clips])
    second = np.concatenate([candidate(clip) for clip in data.clips])
    agreement = float((first.argmax(-1) == second.argmax(-1)).mean())
    accuracies = [None, None]
    if data.labels is not None:
        labels = np.asarray(data.labels)
        accuracies = [float((logits.argmax(-1) == labels).mean()) for logits in (first, second)]
    return PrecisionCheck(
        Path(copy), precision, len(data.clips), data.source, agreement,
        float(np.abs(first - second).max()), *accuracies,
    )  # fmt: skip


def enforce(
    check: PrecisionCheck,
    *,
    min_agreement: float = MIN_AGREEMENT,
    max_accuracy_drop: float = MAX_ACCURACY_DROP,
) -> PrecisionCheck:
    """`check` if the copy is close enough to fp32, else OnnxExportError with the numbers."""
    drop = check.accuracy_drop
    slack = 1e-9  # fractions of a few hundred clips, compared in floating point
    too_far = drop is not None and drop > max_accuracy_drop + slack
    if check.top1_agreement < min_agreement - slack or too_far:
        raise OnnxExportError(
            f"the {check.precision} copy is too far from fp32 and was not kept: "
            f"{str(check).removeprefix(f'wrote {check.path} ({check.precision}): ')} "
            f"(needs >= {100 * min_agreement:.0f}% agreement, <= {max_accuracy_drop} points lost)"
        )
    return check
