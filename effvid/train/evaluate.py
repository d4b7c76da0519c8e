"""Multi-view evaluation: every view of every video through the model, views gathered from all
processes, one score per video, then accuracies, a confusion matrix and per-video predictions.

Each video is counted exactly once whatever the number of processes: a distributed sampler pads
its shards with repeated items, so views are keyed by (video, view) and repeats are dropped
before aggregation.
"""

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from effvid.distributed import all_gather_objects
from effvid.train.metrics import aggregate_views, classification_metrics, confusion_matrix
from effvid.train.plots import plot_confusion_matrix
from effvid.train.time_order import reorder_time


@dataclass
class VideoScores:
    """One row per evaluated video: its id, true label and aggregated class scores."""

    video_ids: list[str]
    labels: torch.Tensor  # (N,)
    scores: torch.Tensor  # (N, classes)
    views_per_video: int
    class_names: list[str] = field(default_factory=list)

    def metrics(self) -> dict[str, float]:
        values = classification_metrics(self.scores, self.labels)
        return {**values, "videos": len(self.video_ids), "views_per_video": self.views_per_video}

    def confusion(self) -> torch.Tensor:
        return confusion_matrix(self.scores.argmax(dim=1), self.labels, self.scores.shape[1])

    def predictions(self, top_k: int = 5) -> list[dict]:
        best = self.scores.topk(min(top_k, self.scores.shape[1]), dim=1)
        rows = []
        for index, video_id in enumerate(self.video_ids):
            label = int(self.labels[index])
            rows.append(
                {
                    "video_id": video_id,
                    "label": self._name(label),
                    "predicted": self._name(int(best.indices[index, 0])),
                    "correct": int(best.indices[index, 0]) == label,
                    "top_k": [
                        {"class": self._name(int(c)), "score": round(float(s), 5)}
                        for s, c in zip(best.values[index], best.indices[index], strict=True)
                    ],
                }
            )
        return rows

    def _name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)


@torch.no_grad()
def collect_view_logits(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    *,
    time_order: str = "forward",
) -> list[tuple[int, int, str, int, torch.Tensor]]:
    """(video_index, view, video_id, label, logits) for every item this process sees.

    `time_order` other than 'forward' feeds every clip reordered in time (`reorder_time`): a
    test of whether, and how, the model uses the order of events."""
    generator = torch.Generator().manual_seed(0)
    model.eval()
    autocast = (
        torch.autocast(device_type=device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else nullcontext()
    )
    items = []
    for clips, labels, meta in loader:
        clips = reorder_time(clips, time_order, generator)
        with autocast:
            logits = model(clips.to(device, non_blocking=True)).float().cpu()
        for i in range(len(labels)):
            items.append(
                (
                    int(meta["video_index"][i]),
                    int(meta["view"][i]),
                    meta["video_id"][i],
                    int(labels[i]),
                    logits[i],
                )
            )
    return items


def gather_video_scores(
    items: Sequence[tuple[int, int, str, int, torch.Tensor]],
    *,
    aggregate: str = "prob",
    class_names: Sequence[str] = (),
) -> VideoScores:
    """Views from all processes -> one aggregated score row per video (sorted by video)."""
    views: dict[int, dict[int, torch.Tensor]] = {}
    info: dict[int, tuple[str, int]] = {}
    for shard in all_gather_objects(list(items)):
        for video_index, view, video_id, label, logits in shard:
            views.setdefault(video_index, {})[view] = logits
            info[video_index] = (video_id, label)
    order = sorted(views)
    scores = [aggregate_views(torch.stack(list(views[v].values())), aggregate) for v in order]
    counts = {len(views[v]) for v in order}
    return VideoScores(
        video_ids=[info[v][0] for v in order],
        labels=torch.tensor([info[v][1] for v in order]),
        scores=torch.stack(scores) if scores else torch.empty(0, 0),
        views_per_video=max(counts) if counts else 0,
        class_names=list(class_names),
    )


def write_evaluation(
    results: VideoScores, folder: str | Path, prefix: str = "eval"
) -> dict[str, Path]:
    """metrics JSON, per-video predictions (CSV and JSON), confusion matrix (CSV and PNG)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": folder / f"{prefix}_metrics.json",
        "predictions_json": folder / f"{prefix}_predictions.json",
        "predictions_csv": folder / f"{prefix}_predictions.csv",
        "confusion_csv": folder / f"{prefix}_confusion.csv",
        "confusion_png": folder / f"{prefix}_confusion.png",
    }
    metrics = results.metrics()
    paths["metrics"].write_text(json.dumps(metrics, indent=2) + "\n")
    predictions = results.predictions()
    paths["predictions_json"].write_text(json.dumps(predictions, indent=1) + "\n")
    with paths["predictions_csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video_id", "label", "predicted", "correct", "top5"])
        for row in predictions:
            top = " ".join(f"{p['class']}:{p['score']:.3f}" for p in row["top_k"])
            writer.writerow([row["video_id"], row["label"], row["predicted"], row["correct"], top])
    matrix = results.confusion()
    names = [results._name(i) for i in range(matrix.shape[0])]
    with paths["confusion_csv"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *names])
        for name, row in zip(names, matrix.tolist(), strict=True):
            writer.writerow([name, *row])
    title = f"top-1 {metrics['top1']:.1f}% on {metrics['videos']} videos"
    plot_confusion_matrix(matrix, names, paths["confusion_png"], title=title)
    return paths


def summarize(metrics: Mapping[str, float]) -> str:
    return (
        f"top-1 {metrics['top1']:.2f}%  top-5 {metrics['top5']:.2f}%  "
        f"mean class accuracy {metrics['mean_class_accuracy']:.2f}%  "
        f"({metrics['videos']} videos x {metrics['views_per_video']} views)"
    )


def evaluate_checkpoint(
    config: Mapping,
    checkpoint: str | Path,
    *,
    split: str = "val",
    output: str | Path | None = None,
    time_order: str = "forward",
    progress: bool = True,
    device: str | None = None,
) -> VideoScores:
    """Evaluate a trained checkpoint on a split of the recipe's data with its test views (clips
    reordered in time by `time_order`, see `reorder_time`) on `device` ('cpu', 'cuda'; default
    CUDA when available); with `output`, write the metrics, predictions and confusion matrix
    there (main process)."""
    from torch.utils.data import DataLoader, DistributedSampler

    from effvid.distributed import setup_distributed
    from effvid.models import get_model_card
    from effvid.models.weights import CheckpointError, load_video_model
    from effvid.train import recipe_data

    context = setup_distributed(device)
    data = config["data"]
    if data["format"] == "demo":
        data = recipe_data.demo_data_section(data, progress=progress and context.is_main)
    model, report = load_video_model(config["model"]["name"], checkpoint, **config["model"]["args"])
    card = get_model_card(config["model"]["name"])
    videos = recipe_data.read_split(data, split, report.class_names)
    if model.num_classes != len(videos.classes):
        raise CheckpointError(
            f"the checkpoint's model has {model.num_classes} classes and {videos.source} has "
            f"{len(videos.classes)}: not a model of this dataset"
        )
    views = recipe_data.resolve_views(config["eval"], card)
    cache = recipe_data.frame_cache(data, videos, progress=progress and context.is_main)
    dataset = recipe_data.eval_dataset(data, card, videos, views, cache=cache)
    sampler = DistributedSampler(
        dataset, num_replicas=context.world_size, rank=context.rank, shuffle=False
    )
    batch = config["eval"]["batch_size"] or config["train"]["batch_size"]
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=data["workers"])
    items = collect_view_logits(
        model.to(context.device), loader, context.device, time_order=time_order
    )
    results = gather_video_scores(
        items, aggregate=config["eval"]["aggregate"], class_names=list(videos.classes)
    )
    if output is not None and context.is_main:
        prefix = split if time_order == "forward" else f"{split}_{time_order}"
        write_evaluation(results, output, prefix=prefix)
    return results
