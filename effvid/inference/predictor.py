"""What is in a video: top-k labels over the whole video, or a timeline of labels over time.

`Predictor` takes a trained checkpoint (PyTorch) or an exported ONNX file; both run the same
preprocessing, the one the checkpoint was trained with (or the model card's): frames decoded
with their short side resized, centre-cropped, normalised. The class probabilities of several
clips spread over the whole video are averaged, so that a long video is not judged by its first
seconds.
"""

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from effvid.data import EvalClips, Preprocessing, open_video
from effvid.data.preprocessing import ClipPlan
from effvid.models import get_model_card, load_model
from effvid.models.fusion import fold_batchnorm


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


def inference_autocast(device: torch.device):
    """bf16 autocast for inference on a GPU; nothing on the CPU, where it does not pay off."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


class Predictor:
    """Predict labels of video files with a registered model (its BatchNorms folded into the
    convolutions, as for any deployment: `effvid.models.fusion`).

    `checkpoint`: a trained checkpoint (its class names label the outputs); `model`: its
    registered name (default: the one an effvid checkpoint names). `onnx`: an exported file
    instead (`effvid export`), whose metadata carries the model card and class names.
    """

    def __init__(
        self,
        model: str | None = None,
        checkpoint: str | Path | None = None,
        *,
        onnx: str | Path | None = None,
        class_names: Sequence[str] | None = None,
        device: str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        if onnx is not None:
            self._init_onnx(Path(onnx))
        else:
            if checkpoint is None:
                raise ValueError("give a checkpoint (and its model name), or an ONNX file")
            network, report = load_model(model, checkpoint)
            self.card = get_model_card(network.model_name)
            self.class_names = report.class_names or []
            self.preprocessing = Preprocessing.resolve(report.preprocessing, self.card)
            prep = self.preprocessing
            example = torch.zeros(self.card.batch_shape(1, prep.num_frames, prep.crop_size))
            self.network = fold_batchnorm(network, example).to(self.device)
            self.run = self._run_torch
        if class_names:
            self.class_names = list(class_names)
        self.clips = EvalClips(self.preprocessing)

    def _init_onnx(self, path: Path) -> None:
        from effvid.deploy.onnx_export import OnnxRunner, read_exported_model

        exported = read_exported_model(path)
        self.card, self.class_names = exported.card, exported.class_names
        self.preprocessing = exported.preprocessing
        runner = OnnxRunner(path)
        self.run = lambda clips: torch.from_numpy(runner(clips))

    @torch.no_grad()
    def _run_torch(self, clips: torch.Tensor) -> torch.Tensor:
        with inference_autocast(self.device):
            return self.network(clips.to(self.device)).float().cpu()

    def _clip_scores(self, reader, plan: ClipPlan) -> torch.Tensor:
        """(len(plan), classes) probabilities, one row per clip of the plan."""
        batch = self.clips.read_many(reader, plan)
        logits = torch.cat([self.run(batch[i : i + 8]) for i in range(0, len(batch), 8)])
        return logits.softmax(dim=-1)

    def _prediction(self, video: str, scores: torch.Tensor, top_k: int, **window) -> Prediction:
        best = scores.topk(min(top_k, scores.numel()))
        names = [self.class_name(int(i)) for i in best.indices]
        return Prediction(video, names, [float(s) for s in best.values], **window)

    def class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)

    def predict(self, video: str | Path, *, top_k: int = 5, clips: int = 10) -> Prediction:
        """Top-k labels of the whole video: mean probabilities of `clips` test clips spread over
        it (the sampler's test views)."""
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
