"""A model over a whole collection of videos (`effvid predict`, `effvid features`): decoded in
DataLoader worker processes, batched across videos, written as it goes, resumable, and spread
over processes and machines with `torchrun`.

    inputs -> videos -> [workers: open, plan the clips, decode each chunk's frames once] ->
    chunks of a video's clips -> [main process: batches of clips from several videos through
    the model] -> each chunk's outputs folded into its video's record -> a sink (predictions or
    features), written as each video completes

Memory does not grow with a video's length: a worker decodes at most `batch_size` clips of a
video at a time, and a video's outputs are folded into its record as they come (a running mean,
or one small entry per timeline window), never held as one tensor for the whole video.

Sharding: under torchrun, rank r of w takes videos r, r + w, ...; within a process, DataLoader
worker k of n takes every n-th of those. Every video is handled exactly once. An unreadable
video goes to the bad-video report with its reason and never stops the run.
"""

import ctypes
import ctypes.util
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from effvid.data import VideoDecodeError, find_videos, load_annotations, open_video
from effvid.data.bad_videos import read_bad_video_report, report_line
from effvid.data.decoding import VIDEO_EXTENSIONS
from effvid.data.preprocessing import ClipPlan, EvalClips
from effvid.data.progress import progress_bar
from effvid.distributed import DistributedContext
from effvid.errors import InputError
from effvid.files import atomic_write, exclusive_lock
from effvid.inference import feature_store, prediction_files
from effvid.inference.metadata import ModelInfo
from effvid.inference.outputs import model_provenance, provenance
from effvid.inference.prediction_files import PredictionFile, RecordBuilder, recorded_videos
from effvid.inference.runtime import inference_autocast
from effvid.models import ModelCard

logger = logging.getLogger("effvid.inference")

# The most clips in one batch: a batch waits for this many clips, possibly from many videos.
MAX_BATCH_SIZE = 1024
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)


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
    """Clips of one video (all of them, or the next chunk of them in order), or why the video
    could not be read. `last`: no more of this video's clips follow. `note`: how the request
    was bounded to what this video allows (`BOUNDED`), on its first chunk."""

    index: int
    video: str
    clips: torch.Tensor | None = None  # (n, 3, T, S, S)
    spans: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None
    last: bool = True
    note: str | None = None


# How a request is bounded by a video (counted in the run's summary, not repeated per video).
BOUNDED = {
    "clips": "have fewer frames than --clips (one clip per frame)",
    "window": "are shorter than --window (one window over the whole video)",
}


class CollectionDataset(IterableDataset):
    """This process's and worker's share of `videos` (by position), each as `VideoClips`
    chunks of at most `chunk` clips (None: a video's clips in one piece)."""

    def __init__(
        self,
        videos: Sequence[str],
        clips: EvalClips,
        request: ClipRequest,
        *,
        rank: int = 0,
        world_size: int = 1,
        skip: frozenset[str] = frozenset(),
        chunk: int | None = None,
    ) -> None:
        self.videos = list(videos)
        self.clips = clips
        self.request = request
        self.rank, self.world_size = rank, world_size
        self.skip = skip
        self.chunk = chunk

    def share(self, worker: int = 0, workers: int = 1) -> list[int]:
        """Indices of the videos of this rank and worker that are still to do."""
        mine = range(self.rank, len(self.videos), self.world_size)
        return [i for i in mine[worker::workers] if self.videos[i] not in self.skip]

    def __iter__(self) -> Iterator[VideoClips]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for index in self.share(worker, workers):
            yield from self.chunks(index, self.chunk)

    def read(self, index: int) -> VideoClips:
        """All the clips of video `index` at once."""
        chunks = self.chunks(index, None)
        try:
            return next(chunks)
        finally:
            chunks.close()  # the video is closed now, not when the generator is collected

    def plan(self, info) -> tuple[ClipPlan, str | None]:
        """The clips the request asks of a video, bounded by what the video holds, and how it
        was bounded (a key of `BOUNDED`), if it was."""
        request, note = self.request, None
        clips = request.clips
        if request.window is None and clips is not None and clips > max(info.num_frames, 1):
            clips, note = max(info.num_frames, 1), "clips"
        fps = info.fps or 30.0
        if request.window is not None and round(request.window * fps) > info.num_frames:
            note = "window"
        plan = self.clips.plan(info, clips=clips, window=request.window, stride=request.stride)
        return plan, note

    def chunks(self, index: int, size: int | None) -> Iterator[VideoClips]:
        """Video `index`'s clips, `size` at a time (None: all at once), each chunk's frames
        decoded once; one VideoClips with the error instead if the video cannot be read, even
        after some of its chunks."""
        video = self.videos[index]
        short_side = self.clips.preprocessing.short_side
        try:
            with open_video(video, short_side=short_side) as reader:
                plan, note = self.plan(reader.info)
                if len(plan) == 0:
                    raise VideoDecodeError(video, "no clip to read: no frames")
                size = size or len(plan)
                for start in range(0, len(plan), size):
                    end = start + size
                    part = ClipPlan(plan.indices[start:end], plan.spans[start:end])
                    clips = self.clips.read_many(reader, part)
                    last = end >= len(plan)
                    yield VideoClips(index, video, clips, part.spans, last=last, note=note)
                    note = None
        except VideoDecodeError as error:
            yield VideoClips(index, video, error=error.reason)


# A function from a batch of clips (B, 3, T, S, S) to the outputs a sink needs, e.g. logits.
ClipFunction = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@dataclass
class VideoFold:
    """What becomes of one video's outputs: `add(outputs, spans)` for each chunk of its clips,
    in order (outputs: one row per clip), then `finish()` once all are through."""

    add: Callable[[dict[str, torch.Tensor], list[tuple[float, float]]], None]
    finish: Callable[[], None]


@dataclass
class CollectionSummary:
    done: int = 0
    skipped: int = 0  # already in the output
    failed: list[tuple[str, str]] = field(default_factory=list)
    bounded: Counter = field(default_factory=Counter)  # videos per key of BOUNDED

    def __str__(self) -> str:
        text = (
            f"{self.done} videos done, {self.skipped} already in the output, "
            f"{len(self.failed)} unreadable"
        )
        notes = [f"{count} {BOUNDED[key]}" for key, count in sorted(self.bounded.items())]
        return "; ".join([text, *notes])


def steady_heap(worker: int | None = None) -> None:
    """In a decoding worker: serve every allocation over 128 KiB by mmap, as glibc does at
    first. glibc raises that threshold as large blocks are freed, and the worker's frames and
    clips (copied into shared memory to be sent, then freed) then fragment its heap: it grew
    by 30 MB an hour of video. Nothing where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def bounded_batch_size(batch_size: int) -> int:
    """`batch_size`, at most MAX_BATCH_SIZE (with a warning)."""
    if batch_size > MAX_BATCH_SIZE:
        logger.warning(
            "--batch-size %d is more clips than a batch may hold: using %d",
            batch_size,
            MAX_BATCH_SIZE,
        )
        return MAX_BATCH_SIZE
    return batch_size


def run_collection(
    videos: Sequence[str],
    clips: EvalClips,
    request: ClipRequest,
    function: ClipFunction,
    fold: Callable[[str], VideoFold],
    *,
    context: DistributedContext,
    skip: frozenset[str] = frozenset(),
    batch_size: int = 32,
    workers: int = 2,
    bad_video_report: str | Path | None = None,
    progress: bool = True,
) -> CollectionSummary:
    """Run `function` over this process's share of `videos` in batches of about `batch_size`
    clips from several videos. `fold(video)` starts what becomes of a video's outputs; it gets
    them chunk by chunk as they come, and is finished when all are through. `skip`: videos
    already done. Memory: a few chunks of `batch_size` clips, whatever the videos' length."""
    batch_size = bounded_batch_size(batch_size)
    dataset = CollectionDataset(
        videos, clips, request, rank=context.rank, world_size=context.world_size, skip=skip,
        chunk=batch_size,
    )  # fmt: skip
    total = len(dataset.share())
    loader = DataLoader(
        dataset,
        batch_size=None,
        num_workers=min(workers, max(total, 1)),
        worker_init_fn=steady_heap,
    )
    mine = videos[context.rank :: context.world_size]
    summary = CollectionSummary(skipped=sum(1 for video in mine if video in skip))
    bar = progress_bar(total, "videos", enabled=progress and context.is_main, unit="video")
    report = Path(bad_video_report) if bad_video_report is not None else None
    listed = set(read_bad_video_report(report)) if report is not None else set()  # by a rerun
    waiting: deque[VideoClips] = deque()
    folds: dict[int, VideoFold] = {}  # the videos some of whose clips are through

    def flush(final: bool = False) -> None:
        while waiting and (final or sum(len(v.clips) for v in waiting) >= batch_size):
            group, count = [], 0
            while waiting and (count < batch_size or not group):
                group.append(waiting.popleft())
                count += len(group[-1].clips)
            outputs = function(torch.cat([v.clips for v in group]).to(context.device))
            start = 0
            for chunk in group:
                end = start + len(chunk.clips)
                if chunk.index not in folds:
                    folds[chunk.index] = fold(chunk.video)
                folds[chunk.index].add(
                    {key: value[start:end].float().cpu() for key, value in outputs.items()},
                    chunk.spans,
                )
                start = end
                if chunk.last:
                    folds.pop(chunk.index).finish()
                    summary.done += 1
                    bar.update()

    for item in loader:
        if item.note is not None:
            summary.bounded[item.note] += 1
        if item.error is not None:  # what was read of the video before is dropped
            for chunk in [chunk for chunk in waiting if chunk.index == item.index]:
                waiting.remove(chunk)
            folds.pop(item.index, None)
            summary.failed.append((item.video, item.error))
            if report is not None and item.video not in listed:
                with report.open("a", encoding="utf-8", newline="") as handle:
                    handle.write(report_line(item.video, item.error))  # csv-quoted
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
    sources = [path for path in [output, *parts_of(output)] if path.exists()]
    expected = [video for video in videos if video not in set(failed)]
    recorded = [video for source in sources for video in recorded_videos(source)]
    checked_once(recorded, expected, str(output))
    with atomic_write(output) as merged:
        prediction_files.concatenate(sources, merged)
    for part in parts_of(output):
        part.unlink()


def _claim_outputs(output: Path, provenance: Mapping, overwrite: bool) -> None:
    """Rank 0, before any process writes: the output and every part of it may be continued by
    this run (`check_prediction_output`); with `overwrite` they and the bad-video report are
    removed instead."""
    for path in [output, *parts_of(output)]:
        prediction_files.check_prediction_output(path, provenance, overwrite=overwrite)
    if overwrite:
        bad_video_report(output).unlink(missing_ok=True)


def _open_output(
    output: Path, made_by: Mapping, overwrite: bool, context: DistributedContext, owned: ExitStack
) -> PredictionFile:
    """This process's prediction file (the output, or its part under torchrun), held in
    `owned`: rank 0 refuses an output that is not effvid's before touching anything, locks it
    (for the whole run: another run's rank 0 is refused, and its other processes never pass
    the barrier to open their parts), and checks it and every part against `made_by` (or
    removes them, with `overwrite`) before any process opens its own."""
    from effvid.distributed import barrier

    if context.is_main:
        prediction_files.check_owner(output)
        owned.enter_context(exclusive_lock(output, "prediction file"))
        _claim_outputs(output, made_by, overwrite)
    barrier()
    return owned.enter_context(PredictionFile(part_path(output, context), made_by))


def bad_video_report(output: Path) -> Path:
    """Where a prediction file's unreadable videos are listed."""
    return output.with_name(f"{output.name}.bad_videos.tsv")


def _top_k_for(top_k: int, class_names: Sequence[str]) -> int:
    """`top_k`, at most the model's classes (when it names them), with a warning."""
    if class_names and top_k > len(class_names):
        logger.warning(
            "--top-k %d is more than the model's %d classes: records list %d",
            top_k,
            len(class_names),
            len(class_names),
        )
        return len(class_names)
    return top_k


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
    overwrite: bool = False,
) -> CollectionSummary:
    """Label every video of `inputs` (see `collect_videos`) with a checkpoint or an ONNX file:
    one record per video (`prediction_files.RecordBuilder`), appended to `output` (.jsonl or
    .csv, which records the run's provenance) as each is done, or handed to `on_record`. A rerun
    with the same output and provenance skips the videos already in it; another provenance is
    refused, unless `overwrite`. The output is locked while written. Under torchrun the
    processes share the videos and rank 0 merges."""
    from effvid.distributed import all_gather_objects, barrier, setup_distributed
    from effvid.inference.predictor import Predictor

    context = setup_distributed(device)
    predictor = Predictor(model, checkpoint, onnx=onnx, runtime=runtime, device=str(context.device))
    request = request.for_model(predictor.card)
    k = _top_k_for(top_k, predictor.class_names)
    timeline = request.window is not None
    with ExitStack() as owned:
        sink, skip = None, frozenset()
        if output is not None:
            output = Path(output)
            options = {"top_k": k, "clips": request.clips, "window": request.window,
                       "stride": request.stride if timeline else None}  # fmt: skip
            made_by = provenance(prediction_files.KIND, predictor.provenance(), options)
            sink = _open_output(output, made_by, overwrite, context, owned)
            done = [path for path in [output, *parts_of(output)] if path != sink.path]
            skip = frozenset(sink.done.union(*map(recorded_videos, done)))
        videos = collect_videos(inputs, root)  # once the output is known to be this run's

        def fold(video: str) -> VideoFold:
            names = predictor.class_names
            builder = RecordBuilder(video, k=k, class_names=names, timeline=timeline)

            def finish() -> None:
                record = builder.record()
                if sink is not None:
                    sink.write(record)
                if on_record is not None:
                    on_record(record)

            return VideoFold(lambda outputs, spans: builder.add(outputs["logits"], spans), finish)

        summary = run_collection(
            videos,
            predictor.clips,
            request,
            lambda clips: {"logits": predictor.model(clips)},
            fold,
            context=context,
            skip=skip,
            batch_size=batch_size,
            workers=workers,
            bad_video_report=None if output is None else bad_video_report(output),
            progress=progress,
        )
        if sink is not None:
            sink.close()
        summary.failed = [f for shard in all_gather_objects(summary.failed) for f in shard]
        barrier()
        if output is not None and context.is_main:
            failed = [video for video, _ in summary.failed]
            if context.world_size > 1 or parts_of(output):
                _merge_parts(output, videos, failed)
            else:
                expected = [video for video in videos if video not in set(failed)]
                checked_once(recorded_videos(output), expected, str(output))
    return summary


LAYERS = ("pre_logits", "tokens", "logits")


def feature_function(network: torch.nn.Module, layer: str, device: torch.device) -> ClipFunction:
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


class _FeatureFold:
    """One video's features as its chunks come: every clip's row (`per_clip`), or a running
    sum for the clips' mean, spanning them all."""

    def __init__(self, video: str, per_clip: bool, writer) -> None:
        self.video, self.per_clip, self.writer = video, per_clip, writer
        self.rows: list[torch.Tensor] = []  # per clip
        self.total: torch.Tensor | None = None  # (1, ...) summed over the clips
        self.count = 0
        self.spans: list[tuple[float, float]] = []

    def add(self, outputs: dict[str, torch.Tensor], spans: list[tuple[float, float]]) -> None:
        features = outputs["features"]
        if self.per_clip:
            self.rows.append(features)
            self.spans += spans
            return
        summed = features.sum(dim=0, keepdim=True)
        self.total = summed if self.total is None else self.total + summed
        self.count += len(features)
        self.spans = [(self.spans[0][0] if self.spans else spans[0][0], spans[-1][1])]

    def finish(self) -> None:
        features = torch.cat(self.rows) if self.per_clip else self.total / self.count
        self.writer.add(self.video, features, self.spans)


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
    overwrite: bool = False,
) -> CollectionSummary:
    """Embed every video of `inputs` into a `FeatureStore` at `output`: per video the clips'
    features averaged, or with `per_clip` one row per clip along the video (with its span).
    The store records the run's provenance; resumable like `predict_collection`, refused for
    another provenance unless `overwrite`, locked while written; under torchrun each process
    writes its own shards."""
    from effvid.data import Preprocessing
    from effvid.distributed import all_gather_objects, barrier, setup_distributed
    from effvid.models import get_model_card
    from effvid.models.weights import load_video_model

    context = setup_distributed(device)
    network, report = load_video_model(model, checkpoint)
    network = network.to(context.device)
    card = get_model_card(network.model_name)
    preprocessing = Preprocessing.resolve(report.preprocessing, card)
    request = request.for_model(card)
    function = feature_function(network.eval(), layer, context.device)
    timeline = request.window is not None
    info = ModelInfo(card, list(report.class_names or []), preprocessing)
    made_by = provenance(
        feature_store.KIND,
        model_provenance(checkpoint, info, runtime="eager"),
        {"layer": layer, "per_clip": per_clip, "clips": request.clips, "window": request.window,
         "stride": request.stride if timeline else None},
    )  # fmt: skip
    output = Path(output)
    rank = f".part-{context.rank}-of-{context.world_size}" if context.world_size > 1 else ""
    with ExitStack() as owned:

        def writer() -> feature_store.FeatureWriter:
            return feature_store.FeatureWriter(
                output, made_by, overwrite=overwrite and context.is_main,
                index_name=f"{feature_store.INDEX}{rank}",
                shard_prefix=f"shard-r{context.rank}" if rank else "shard",
                videos_per_shard=videos_per_shard,
            )  # fmt: skip

        if context.is_main:
            feature_store.check_owner(output)
            output.mkdir(parents=True, exist_ok=True)  # so that the lock is inside the store
            owned.enter_context(exclusive_lock(output, "feature store"))
            store = writer()
        barrier()
        if not context.is_main:
            store = writer()
        skip = frozenset(feature_store.indexed_videos(output))
        summary = run_collection(
            collect_videos(inputs, root),
            EvalClips(preprocessing),
            request,
            function,
            lambda video: _FeatureFold(video, per_clip, store),
            context=context,
            skip=skip,
            batch_size=batch_size,
            workers=workers,
            bad_video_report=output / feature_store.BAD_VIDEOS,
            progress=progress,
        )
        store.flush()
        summary.failed = [f for shard in all_gather_objects(summary.failed) for f in shard]
        barrier()
        if context.is_main:
            _merge_index(output, collect_videos(inputs, root), [v for v, _ in summary.failed])
    return summary


def _merge_index(folder: Path, videos: Sequence[str], failed: Sequence[str]) -> None:
    """Rank 0: the parts of the index appended to it (each video exactly once), then removed."""
    index = folder / feature_store.INDEX
    parts = sorted(folder.glob(f"{feature_store.INDEX}.part-*-of-*"))
    expected = [video for video in videos if video not in set(failed)]
    checked_once(feature_store.indexed_videos(folder), expected, str(index))
    with atomic_write(index) as merged, merged.open("wb") as target:
        for source in [index, *parts]:
            if source.exists():
                with source.open("rb") as handle:
                    complete = (line for line in handle if line.endswith(b"\n"))
                    target.writelines(line for line in complete if line.strip())
    for part in parts:
        part.unlink()
