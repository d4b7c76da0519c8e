"""What is in a video: top-k labels over the whole video, or a timeline of labels over time.

`Predictor` takes a trained checkpoint (PyTorch) or an exported ONNX file; both run the same
preprocessing, the one the checkpoint was trained with (or the model card's): frames decoded
with their short side resized, centre-cropped, normalised. The class probabilities of several
clips spread over the whole video are averaged, so that a long video is not judged by its first
seconds. A video is read a few clips at a time, so that a long one needs no more memory than a
short one.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from effvid.data import EvalClips, Preprocessing, open_video
from effvid.data.preprocessing import ClipPlan
from effvid.inference.outputs import model_provenance
from effvid.inference.runtime import open_clip_model
from effvid.models import ModelCard

CLIPS_AT_ONCE = 8  # read and run together


@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one video (or of one window of it) with their mean probabilities."""

    video: str
    labels: list[str]
    scores: list[float]
    start: float | None = None  # seconds, for timeline windows
    end: float | None = None

    def as_dict(self) -> dict:
        pairs = zip(self.labels, self.scores, strict=True)
        top = [{"label": label, "score": round(score, 5)} for label, score in pairs]
        row = {"video": self.video, "top": top}
        if self.start is not None:
            row.update(start=round(self.start, 3), end=round(self.end, 3))
        return row

    def __str__(self) -> str:
        when = "" if self.start is None else f" [{self.start:.1f}-{self.end:.1f} s]"
        pairs = zip(self.labels, self.scores, strict=True)
        top = ", ".join(f"{label} {score:.3f}" for label, score in pairs)
        return f"{self.video}{when}: {top}"


class Predictor:
    """Predict labels of video files with a trained checkpoint (eager PyTorch, BatchNorms folded
    as for any deployment) or an exported file, through one interface (`effvid.inference.runtime`).

    `checkpoint`: a trained checkpoint (its class names label the outputs); `model`: its
    registered name (default: the one an effvid checkpoint names). `onnx`: an exported file
    instead (`effvid export`), whose metadata carries the model card and class names, run by
    `runtime` (`onnxruntime`, the default, or `openvino`).
    `class_names` replace the ones the model carries.
    """

    def __init__(
        self,
        model: str | None = None,
        checkpoint: str | Path | None = None,
        *,
        onnx: str | Path | None = None,
        runtime: str | None = None,
        class_names: Sequence[str] | None = None,
        device: str = "cpu",
    ) -> None:
        self.model = open_clip_model(
            checkpoint, model=model, onnx=onnx, runtime=runtime, device=device
        )
        self.weights = Path(onnx if onnx is not None else checkpoint)
        info = self.model.info
        self.info = replace(info, class_names=list(class_names)) if class_names else info
        self.clips = EvalClips(self.preprocessing)

    @property
    def card(self) -> ModelCard:
        return self.info.card

    @property
    def class_names(self) -> list[str]:
        return self.info.class_names

    @property
    def preprocessing(self) -> Preprocessing:
        return self.info.preprocessing

    def provenance(self) -> dict:
        """What this predictor is, as outputs record it (`outputs.model_provenance`)."""
        return model_provenance(self.weights, self.info, self.model.runtime)

    def _clip_scores(self, reader, plan: ClipPlan) -> torch.Tensor:
        """(len(plan), classes) probabilities, one row per clip of the plan, read and run
        `CLIPS_AT_ONCE` clips at a time."""
        scores = []
        for start in range(0, len(plan), CLIPS_AT_ONCE):
            end = start + CLIPS_AT_ONCE
            part = ClipPlan(plan.indices[start:end], plan.spans[start:end])
            scores.append(self.model(self.clips.read_many(reader, part)).softmax(dim=-1))
        return torch.cat(scores)

    def _prediction(self, video: str, scores: torch.Tensor, top_k: int, **window) -> Prediction:
        best = scores.topk(min(top_k, scores.numel()))
        names = [self.info.class_name(int(i)) for i in best.indices]
        return Prediction(video, names, [float(s) for s in best.values], **window)

    def predict(self, video: str | Path, *, top_k: int = 5, clips: int | None = None) -> Prediction:
        """Top-k labels of the whole video: mean probabilities of `clips` test clips spread over
        it (default: the model card's temporal test views)."""
        clips = clips or self.card.test_clips
        with open_video(video, short_side=self.preprocessing.short_side) as reader:
            scores = self._clip_scores(reader, self.clips.plan(reader.info, clips=clips))
        return self._prediction(str(video), scores.mean(dim=0), top_k)

    def timeline(
        self, video: str | Path, *, window: float = 2.0, stride: float = 1.0, top_k: int = 3
    ) -> list[Prediction]:
        """Labels over time: one clip in the middle of each window of `window` seconds, windows
        every `stride` seconds."""
        with open_video(video, short_side=self.preprocessing.short_side) as reader:
            plan = self.clips.plan(reader.info, window=window, stride=stride)
            scores = self._clip_scores(reader, plan)
        return [
            self._prediction(str(video), row, top_k, start=begin, end=end)
            for (begin, end), row in zip(plan.spans, scores, strict=True)
        ]
