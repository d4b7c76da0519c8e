"""Writing real encoded video files with PyAV (for the demo dataset, tests and benchmarks)."""

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    *,
    fps: float = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: Mapping[str, str] | None = None,
    timestamps: Sequence[float] | None = None,
    rotation: int = 0,
) -> None:
    """Encode RGB frames, each uint8 (H, W, 3), into `path`; the container follows the suffix.

    `timestamps` (seconds, increasing, one per frame) writes a variable-frame-rate stream, else
    frame i is shown at i / fps. `rotation` stores a display rotation (degrees counter-clockwise)
    as players and `VideoReader` apply it. yuv420p needs even sizes. The folder is created.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = pix_fmt
        stream.options = dict(options or {})
        if timestamps is not None:
            stream.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for index, array in enumerate(frames):
            if index == 0:
                stream.height, stream.width = array.shape[:2]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            if timestamps is not None:
                frame.pts = round(timestamps[index] * 1000)
                frame.time_base = stream.time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
