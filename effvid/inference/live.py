"""`effvid stream`: recognise actions live, frame by frame, with a causal Video Mobile-Former.

A source (a video file, a camera, a network stream; anything FFmpeg opens through PyAV) is
decoded frame by frame. Every `sampling_rate`-th frame (the model's frame rate, from the
checkpoint's preprocessing) is resized and centre-cropped as in training and fed to the model's
streaming step, which carries its state from frame to frame: each new frame costs one frame of
computation, whatever the length of the stream.

The verdict: every step gives logits for the frame just seen (the head on the current tokens
and the current frame's pooled features); the label shown is the argmax of the mean of the last
`window` steps' logits, by default the checkpoint's clip length (`num_frames`). That is the
verdict the model was trained to give: a causal model's clip logits are the mean of its frames'
logits. A frame's own logits judge only what it has seen so far (on the demo test set, the last
frame's alone: 78.2% top-1; the mean over the clip: 91.1%; an exponential average of the steps'
probabilities, the first policy here: 63.6%; the mean of the clip's probabilities: 37.3%).

Cameras: PyAV opens them by FFmpeg input format, written here as `FORMAT:DEVICE`:
`v4l2:/dev/video0` (Linux), `avfoundation:0` (macOS), `dshow:video=Integrated Camera`
(Windows). Network streams by URL (`rtsp://...`, `http://...`). A frame that cannot be decoded
is skipped and counted, never fatal.

Memory does not grow with the stream: the model's state, the last `window` steps' logits and
the last `LATENCIES_KEPT` latencies (the summary's median) are all that is kept. The labelled
video (`--output`) records what made it (`effvid.inference.outputs`, in its `comment`
metadata); it replaces only a video that effvid stream wrote, never another file, and is locked
while written.
"""

import json
import statistics
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TextIO

import av
import numpy as np
import torch

from effvid.data import EvalClips, Preprocessing, VideoDecodeError
from effvid.data.decoding import frame_to_rgb
from effvid.data.transforms import crop_view
from effvid.errors import InputError
from effvid.files import exclusive_lock
from effvid.inference.outputs import foreign_error, model_provenance, provenance
from effvid.inference.runtime import open_stream_model

CAMERA_FORMATS = ("v4l2", "avfoundation", "dshow")
KIND = "stream"
LATENCIES_KEPT = 10_000  # the summary's median is over the last this many steps


@dataclass(frozen=True)
class Reading:
    """The stream's verdict after one step."""

    seconds: float  # into the source
    frame: int  # index of the decoded frame
    label: str
    score: float  # probability of `label` from the window's mean logits
    latency_ms: float  # preprocessing and model step for this frame

    def as_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "frame": self.frame, "label": self.label,
                "score": round(self.score, 4), "latency_ms": round(self.latency_ms, 2)}  # fmt: skip


class LiveRecognizer:
    """A causal model's streaming step on one stream: `push(frame)` per frame, the verdict over
    the last `window` steps (default: the checkpoint's clip length).

    `checkpoint` (eager PyTorch) or `onnx` (an `effvid export --stream` file)."""

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        model: str | None = None,
        onnx: str | Path | None = None,
        runtime: str | None = None,
        window: int | None = None,
    ) -> None:
        if window is not None and window < 1:
            raise InputError(f"window must be at least 1 step, got {window}")
        self.model = open_stream_model(checkpoint, model=model, onnx=onnx, runtime=runtime)
        self.weights = Path(onnx if onnx is not None else checkpoint)
        self.info = self.model.info
        self.clips = EvalClips(self.preprocessing)
        self.window = window or self.preprocessing.num_frames
        self.restart()

    @property
    def preprocessing(self) -> Preprocessing:
        return self.info.preprocessing

    def provenance(self) -> dict:
        """What this recognizer is, as outputs record it (`outputs.model_provenance`), with the
        window of its verdict."""
        made_by = model_provenance(self.weights, self.info, self.model.runtime)
        return provenance(KIND, made_by, {"window": self.window})

    def restart(self) -> None:
        """Start a new stream: no history in the model, no steps in the verdict."""
        self.state = self.model.init_state(1)
        self.recent: deque[torch.Tensor] = deque(maxlen=self.window)  # the last steps' logits

    def push(self, rgb: np.ndarray, *, seconds: float, frame: int) -> Reading:
        """One frame, uint8 (H, W, 3) at the short side of the preprocessing -> the verdict."""
        start = time.perf_counter()
        clip, _ = self.clips.transform(torch.from_numpy(rgb)[None], -1)  # (3, 1, H, W)
        clip = crop_view(clip, self.clips.crop_size, 0, 1)[None]
        logits, self.state = self.model.step(clip, self.state)
        self.recent.append(logits[0, -1].float())
        latency = (time.perf_counter() - start) * 1000
        probabilities = torch.stack(list(self.recent)).mean(dim=0).softmax(dim=-1)
        best = int(probabilities.argmax())
        label = self.info.class_name(best)
        return Reading(seconds, frame, label, float(probabilities[best]), latency)


def open_source(source: str) -> av.container.InputContainer:
    """A file, a URL, or a camera as `FORMAT:DEVICE` (see the module docstring)."""
    camera_format, _, device = source.partition(":")
    try:
        if camera_format in CAMERA_FORMATS and device:
            container = av.open(device, format=camera_format)
        else:
            container = av.open(source)
    except (av.FFmpegError, OSError) as error:
        raise VideoDecodeError.from_exception(source, error) from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(source, "no video stream: nothing to recognise")
    return container


@dataclass
class StreamSummary:
    decoded: int = 0
    processed: int = 0
    dropped: int = 0  # packets that could not be decoded
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))

    def __str__(self) -> str:
        median = statistics.median(self.latencies) if self.latencies else float("nan")
        return (
            f"{self.decoded} frames decoded, {self.processed} through the model "
            f"({median:.1f} ms per frame, median), {self.dropped} undecodable skipped"
        )


def decoded_frames(container: av.container.InputContainer, summary: StreamSummary) -> Iterator:
    """The source's frames, skipping (and counting) the packets that fail to decode."""
    stream = container.streams.video[0]
    stream.codec_context.thread_count = 1
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.FFmpegError:
            summary.dropped += 1
            continue
        for frame in frames:
            summary.decoded += 1
            yield frame


def run_stream(
    source: str,
    recognizer: LiveRecognizer,
    *,
    output: str | Path | None = None,
    log: TextIO | None = None,
    changes: TextIO = sys.stdout,
) -> StreamSummary:
    """Recognise `source` live: print each change of label to `changes`, every step as JSON
    lines to `log`, and, with `output`, write the video with the label drawn on every frame."""
    summary = StreamSummary()
    stride = recognizer.preprocessing.sampling_rate
    shown: str | None = None
    reading: Reading | None = None
    with ExitStack() as owned:
        container = owned.enter_context(open_source(source))
        fps = float(container.streams.video[0].average_rate or 25)
        writer = None
        if output is not None:
            check_owner(Path(output))  # before a lock file is written beside it
            owned.enter_context(exclusive_lock(output, "labelled video"))
            writer = AnnotatedVideo(output, fps, recognizer.provenance() | {"source": source})
        try:
            for index, frame in enumerate(decoded_frames(container, summary)):
                seconds = float(frame.time) if frame.time is not None else index / fps
                if index % stride == 0:
                    rgb = frame_to_rgb(frame, recognizer.preprocessing.short_side)
                    reading = recognizer.push(rgb, seconds=seconds, frame=index)
                    summary.processed += 1
                    summary.latencies.append(reading.latency_ms)
                    if log is not None:
                        log.write(json.dumps(reading.as_dict()) + "\n")
                    if reading.label != shown:
                        shown = reading.label
                        line = f"{seconds:7.2f} s  {reading.label}  {reading.score:.2f}"
                        print(f"{line}  ({reading.latency_ms:.1f} ms)", file=changes, flush=True)
                if writer is not None:
                    writer.write(frame_to_rgb(frame), reading)
        finally:
            if writer is not None:
                writer.close()
    return summary


def written_by_stream(path: Path) -> bool:
    """Whether `path` is a video that `effvid stream` wrote (its metadata says so)."""
    try:
        with av.open(str(path)) as container:
            comment = container.metadata.get("comment", "")
    except (av.FFmpegError, OSError):
        return False
    try:
        made_by = json.loads(comment)
    except ValueError:
        return False
    return isinstance(made_by, dict) and made_by.get("effvid") == KIND


def check_owner(path: Path) -> None:
    """ForeignOutputError if `path` is a file that `effvid stream` did not write."""
    if path.exists() and (path.is_dir() or path.stat().st_size) and not written_by_stream(path):
        raise foreign_error(path, "a labelled video", "stream")


class AnnotatedVideo:
    """An H.264 mp4 of the source's frames with the current label, its score and a confidence
    bar drawn at the top; `made_by` (its provenance) goes into its `comment` metadata. Replaces
    only a video that `effvid stream` wrote."""

    def __init__(self, path: str | Path, fps: float, made_by: dict) -> None:
        path = Path(path)
        check_owner(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.container.metadata["comment"] = json.dumps(made_by, ensure_ascii=False)
        self.stream = self.container.add_stream(
            "libx264", rate=Fraction(fps).limit_denominator(1001)
        )
        self.stream.pix_fmt = "yuv420p"
        self.size: tuple[int, int] | None = None

    def write(self, rgb: np.ndarray, reading: Reading | None) -> None:
        from PIL import Image, ImageDraw

        if self.size is None:  # yuv420p needs even sides
            self.size = (rgb.shape[1] // 2 * 2, rgb.shape[0] // 2 * 2)
            self.stream.width, self.stream.height = self.size
        image = Image.fromarray(rgb[: self.size[1], : self.size[0]])
        if reading is not None:
            draw = ImageDraw.Draw(image)
            width = self.size[0]
            draw.rectangle((0, 0, width, 14), fill=(0, 0, 0))
            draw.rectangle((0, 12, round(width * reading.score), 14), fill=(255, 200, 0))
            draw.text((2, 0), f"{reading.label} {reading.score:.2f}", fill=(255, 255, 255))
        frame = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        self.container.mux(self.stream.encode())
        self.container.close()
