"""A model over a whole collection of videos (`effvid predict`, `effvid features`): decoded in
DataLoader worker processes, batched across videos, written as it goes, resumable, and spread
over processes and machines with `torchrun`.

    inputs -> videos -> [workers: open, plan the clips, decode each frame once] -> clips of a
    video -> [main process: batches of clips from several videos through the model] -> one
    record per video -> a sink (predictions or features), written as each video completes

Sharding: under torchrun, rank r of w takes videos r, r + w, ...; within a process, DataLoader
worker k of n takes every n-th of those. Every video is handled exactly once. An unreadable
video goes to the bad-video report with its reason and never stops the run.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from effvid.data import VideoDecodeError, find_videos, load_annotations, open_video
from effvid.data.bad_videos import report_line
from effvid.data.decoding import VIDEO_EXTENSIONS
from effvid.data.preprocessing import EvalClips
from effvid.data.progress import progress_bar
from effvid.distributed import DistributedContext
from effvid.errors import InputError
from effvid.files import atomic_write
from effvid.inference.runtime import inference_autocast
from effvid.models import ModelCard


def collect_videos(inputs: Sequence[str | Path], root: str | Path | None = None) -> list[str]:
    """The videos named by `inputs`: video files, folders (every video below), and annotation
    files in any format effvid reads (their videos below `root`), in order, each once."""
    videos: list[str] = []
    for given in map(Path, inputs):
        if given.is_dir():
            videos += [str(path) for path in find_videos(given)]
        elif given.suffix.lower() in VIDEO_EXTENSIONS or not given.exists():
            videos.append(str(given))  # a missing file is reported as unreadable, not fatal
        else:
            listed = load_annotations(given, root)
            videos += [str(record.path) for record in listed.records] + listed.missing
    return list(dict.fromkeys(videos))


@dataclass(frozen=True)
class ClipRequest:
    """What to read from every video: `clips` views over the whole video (None: the model card's
    temporal test views), or a timeline of `window`-second windows every `stride` seconds."""

    clips: int | None = None
    window: float | None = None
    stride: float | None = None

    def for_model(self, card: ModelCard) -> "ClipRequest":
        """This request with the views a model's card gives filled in where none were asked."""
        if self.window is None and self.clips is None:
            return replace(self, clips=card.test_clips)
        return self


@dataclass
class VideoClips:
    """One video's clips, or why it could not be read."""

    index: int
    video: str
    clips: torch.Tensor | None = None  # (n, 3, T, S, S)
    spans: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None


class CollectionDataset(IterableDataset):
    """This process's and worker's share of `videos` (by position), each as a `VideoClips`."""

    def __init__(
        self,
        videos: Sequence[str],
        clips: EvalClips,
        request: ClipRequest,
        *,
        rank: int = 0,
        world_size: int = 1,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        self.videos = list(videos)
        self.clips = clips
        self.request = request
        self.rank, self.world_size = rank, world_size
        self.skip = skip

    def share(self, worker: int = 0, workers: int = 1) -> list[int]:
        """Indices of the videos of this rank and worker that are still to do."""
        mine = range(self.rank, len(self.videos), self.world_size)
        return [i for i in mine[worker::workers] if self.videos[i] not in self.skip]

    def __iter__(self) -> Iterator[VideoClips]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for index in self.share(worker, workers):
            yield self.read(index)

    def read(self, index: int) -> VideoClips:
        video = self.videos[index]
        short_side = self.clips.preprocessing.short_side
        try:
            with open_video(video, short_side=short_side) as reader:
                plan = self.clips.plan(
                    reader.info,
                    clips=self.request.clips,
                    window=self.request.window,
                    stride=self.request.stride,
                )
                return VideoClips(index, video, self.clips.read_many(reader, plan), plan.spans)
        except VideoDecodeError as error:
            return VideoClips(index, video, error=error.reason)


# A function from a batch of clips (B, 3, T, S, S) to the outputs a sink needs, e.g. logits.
ClipFunction = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@dataclass
class CollectionSummary:
    done: int = 0
    skipped: int = 0  # already in the output
    failed: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.done} videos done, {self.skipped} already in the output, "
            f"{len(self.failed)} unreadable"
        )


def run_collection(
    videos: Sequence[str],
    clips: EvalClips,
    request: ClipRequest,
    function: ClipFunction,
    write: Callable[[VideoClips, dict[str, torch.Tensor]], None],
    *,
    context: DistributedContext,
    skip: frozenset[str] = frozenset(),
    batch_size: int = 32,
    workers: int = 2,
    bad_video_report: str | Path | None = None,
    progress: bool = True,
) -> CollectionSummary:
    """Run `function` over this process's share of `videos` in batches of about `batch_size`
    clips from several videos; `write(video, outputs)` gets each video's outputs (one row per
    clip) as soon as all its clips are through. `skip`: videos already done."""
    dataset = CollectionDataset(
        videos, clips, request, rank=context.rank, world_size=context.world_size, skip=skip
    )
    total = len(dataset.share())
    loader = DataLoader(dataset, batch_size=None, num_workers=min(workers, max(total, 1)))
    mine = videos[context.rank :: context.world_size]
    summary = CollectionSummary(skipped=sum(1 for video in mine if video in skip))
    bar = progress_bar(total, "videos", enabled=progress and context.is_main, unit="video")
    report = Path(bad_video_report) if bad_video_report is not None else None
    waiting: list[VideoClips] = []

    def flush(final: bool = False) -> None:
        while waiting and (final or sum(len(v.clips) for v in waiting) >= batch_size):
            group, count = [], 0
            while waiting and (count < batch_size or not group):
                group.append(waiting.pop(0))
                count += len(group[-1].clips)
            outputs = function(torch.cat([v.clips for v in group]).to(context.device))
            start = 0
            for video in group:
                end = start + len(video.clips)
                write(
                    video, {key: value[start:end].float().cpu() for key, value in outputs.items()}
                )
                start = end
                summary.done += 1
                bar.update()

    for item in loader:
        if item.error is not None:
            summary.failed.append((item.video, item.error))
            if report is not None:
                with report.open("a", encoding="utf-8") as handle:
                    handle.write(report_line(item.video, item.error))
            bar.update()
            continue
        waiting.append(item)
        flush()
    flush(final=True)
    bar.close()
    return summary


def part_path(output: Path, context: DistributedContext) -> Path:
    """Where this process writes: the output itself alone, a part of it under torchrun."""
    if context.world_size == 1:
        return output
    part = f".part-{context.rank}-of-{context.world_size}"
    return output.with_name(f"{output.stem}{part}{output.suffix}")


def parts_of(output: Path) -> list[Path]:
    """Every part file of `output` a torchrun run left (of any world size)."""
    return sorted(output.parent.glob(f"{output.stem}.part-*-of-*{output.suffix}"))


def checked_once(ids: Sequence[str], expected: Sequence[str], what: str) -> None:
    """Every expected video exactly once among `ids` (the merged output)."""
    seen: dict[str, int] = {}
    for video in ids:
        seen[video] = seen.get(video, 0) + 1
    twice = [video for video, count in seen.items() if count > 1]
    if twice:
        raise RuntimeError(f"{what}: {len(twice)} videos recorded twice, e.g. {twice[0]}")
    missing = [video for video in expected if video not in seen]
    if missing:
        raise RuntimeError(f"{what}: {len(missing)} videos missing, e.g. {missing[0]}")


def _merge_parts(output: Path, videos: Sequence[str], failed: Sequence[str]) -> None:
    """Rank 0, after every process finished: the parts appended to the output, each video
    checked to be there exactly once, the parts removed."""
    from effvid.inference.prediction_files import PredictionFile, read_records

    records = read_records(output) if output.exists() else []
    for part in parts_of(output):
        records += read_records(part)
    expected = [video for video in videos if video not in set(failed)]
    checked_once([record["video"] for record in records], expected, str(output))
    with atomic_write(output) as merged:
        sink = PredictionFile(merged)
        for record in records:
            sink.write(record)
        sink.close()
    for part in parts_of(output):
        part.unlink()


def predict_collection(
    inputs: Sequence[str | Path],
    *,
    model: str | None = None,
    checkpoint: str | Path | None = None,
    onnx: str | Path | None = None,
    output: str | Path | None = None,
    runtime: str | None = None,
    request: ClipRequest = ClipRequest(),
    top_k: int = 5,
    root: str | Path | None = None,
    batch_size: int = 32,
    workers: int = 2,
    device: str | None = None,
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
) -> CollectionSummary:
    """Label every video of `inputs` (see `collect_videos`) with a checkpoint or an ONNX file:
    one record per video (`prediction_files.prediction_record`), appended to `output` (.jsonl
    or .csv) as each is done, or handed to `on_record`. A rerun with the same output skips the
    videos already in it. Under torchrun the processes share the videos and rank 0 merges."""
    from effvid.distributed import all_gather_objects, barrier, setup_distributed
    from effvid.inference.prediction_files import (
        PredictionFile,
        prediction_record,
        read_records,
        recorded_videos,
    )
    from effvid.inference.predictor import Predictor

    context = setup_distributed(device)
    predictor = Predictor(model, checkpoint, onnx=onnx, runtime=runtime, device=str(context.device))
    request = request.for_model(predictor.card)
    videos = collect_videos(inputs, root)
    sink, skip = None, frozenset()
    if output is not None:
        output = Path(output)
        skip = frozenset(v for path in [output, *parts_of(output)] for v in recorded_videos(path))
        sink = PredictionFile(part_path(output, context))
    timeline = request.window is not None

    def write(video: VideoClips, outputs: dict[str, torch.Tensor]) -> None:
        record = prediction_record(
            video.video, outputs["logits"], video.spans, k=top_k,
            class_names=predictor.class_names, timeline=timeline,
        )  # fmt: skip
        if sink is not None:
            sink.write(record)
        if on_record is not None:
            on_record(record)

    report = None if output is None else output.with_name(f"{output.name}.bad_videos.tsv")
    summary = run_collection(
        videos,
        predictor.clips,
        request,
        lambda clips: {"logits": predictor.model(clips)},
        write,
        context=context,
        skip=skip,
        batch_size=batch_size,
        workers=workers,
        bad_video_report=report,
        progress=progress,
    )
    if sink is not None:
        sink.close()
    failed = [video for shard in all_gather_objects(summary.failed) for video, _ in shard]
    summary.failed = [f for shard in all_gather_objects(summary.failed) for f in shard]
    barrier()
    if output is not None and context.is_main and context.world_size > 1:
        _merge_parts(output, videos, failed)
    elif output is not None and context.is_main:
        expected = [video for video in videos if video not in set(failed)]
        checked_once([r["video"] for r in read_records(output)], expected, str(output))
    return summary


LAYERS = ("pre_logits", "tokens", "logits")


def _feature_function(network: torch.nn.Module, layer: str, device: torch.device) -> ClipFunction:
    """clips -> {"features": (n, ...)} from `layer`: the pre-logits (the head's input width),
    the global tokens after the last bridge (Mobile-Former family), or the logits."""
    if layer not in LAYERS:
        raise InputError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")

    @torch.no_grad()
    def function(clips: torch.Tensor) -> dict[str, torch.Tensor]:
        with inference_autocast(device):
            features = network.forward_features(clips)
            if layer == "tokens":
                if features.tokens is None:
                    raise InputError(f"{network.model_name} has no global tokens")
                return {"features": features.tokens}
            return {"features": network.forward_head(features, pre_logits=layer == "pre_logits")}

    return function


def extract_features(
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    checkpoint: str | Path,
    model: str | None = None,
    layer: str = "pre_logits",
    per_clip: bool = False,
    request: ClipRequest = ClipRequest(),
    root: str | Path | None = None,
    batch_size: int = 32,
    workers: int = 2,
    device: str | None = None,
    videos_per_shard: int = 64,
    progress: bool = True,
) -> CollectionSummary:
    """Embed every video of `inputs` into a `FeatureStore` at `output`: per video the clips'
    features averaged, or with `per_clip` one row per clip along the video (with its span).
    Resumable like `predict_collection`; under torchrun each process writes its own shards."""
    from effvid.data import Preprocessing
    from effvid.distributed import all_gather_objects, barrier, setup_distributed
    from effvid.inference.feature_store import INDEX, FeatureWriter, file_sha256, indexed_videos
    from effvid.models import get_model_card, load_model

    context = setup_distributed(device)
    network, report = load_model(model, checkpoint)
    network = network.to(context.device)
    card = get_model_card(network.model_name)
    preprocessing = Preprocessing.resolve(report.preprocessing, card)
    request = request.for_model(card)
    manifest = {
        "model": network.model_name, "layer": layer, "per_clip": per_clip,
        "clips": request.clips, "window": request.window, "stride": request.stride,
        "preprocessing": preprocessing.as_dict(), "checkpoint": str(checkpoint),
        "checkpoint_sha256": file_sha256(checkpoint),
    }  # fmt: skip
    output = Path(output)
    rank = f".part-{context.rank}-of-{context.world_size}" if context.world_size > 1 else ""
    writer = FeatureWriter(
        output, manifest, index_name=f"{INDEX}{rank}",
        shard_prefix=f"shard-r{context.rank}" if rank else "shard",
        videos_per_shard=videos_per_shard,
    )  # fmt: skip
    skip = frozenset(indexed_videos(output))

    def write(video: VideoClips, outputs: dict[str, torch.Tensor]) -> None:
        features = outputs["features"]
        if per_clip:
            writer.add(video.video, features, video.spans)
        else:  # the clips' mean, spanning them all
            whole = [(video.spans[0][0], video.spans[-1][1])]
            writer.add(video.video, features.mean(dim=0, keepdim=True), whole)

    summary = run_collection(
        collect_videos(inputs, root),
        EvalClips(preprocessing),
        request,
        _feature_function(network.eval(), layer, context.device),
        write,
        context=context,
        skip=skip,
        batch_size=batch_size,
        workers=workers,
        bad_video_report=output / "bad_videos.tsv",
        progress=progress,
    )
    writer.flush()
    summary.failed = [f for shard in all_gather_objects(summary.failed) for f in shard]
    barrier()
    if context.is_main:
        _merge_index(output, collect_videos(inputs, root), [v for v, _ in summary.failed])
    return summary


def _merge_index(folder: Path, videos: Sequence[str], failed: Sequence[str]) -> None:
    """Rank 0: the parts of the index appended to it (each video exactly once), then removed."""
    from effvid.inference.feature_store import INDEX

    index = folder / INDEX
    parts = sorted(folder.glob(f"{INDEX}.part-*-of-*"))
    lines = index.read_text(encoding="utf-8").splitlines() if index.exists() else []
    for part in parts:
        lines += part.read_text(encoding="utf-8").splitlines()
    lines = [line for line in lines if line.strip()]
    expected = [video for video in videos if video not in set(failed)]
    checked_once([json.loads(line)["video"] for line in lines], expected, str(index))
    with atomic_write(index) as merged:
        merged.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    for part in parts:
        part.unlink()
