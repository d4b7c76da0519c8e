"""Live recognition of a client's camera over a WebSocket, one connection one stream.

The client sends each camera frame as one binary message, a picture (JPEG, PNG or WebP); the
server answers every frame with one JSON message, the verdict so far. As in `effvid stream`,
every `sampling_rate`-th frame is resized, cropped and fed to the causal model's streaming
step, which carries the connection's own state: memory per connection stays constant however
long it streams. A frame that cannot be used gets an answer `{"error": ...}` and is skipped.

    binary message (picture) -> uint8 (H, W, 3) -> short side resized -> model step -> verdict
    verdict: {"frame", "seconds", "label", "score", "latency_ms", "step"}
"""

import copy
import io
import time

import av
import numpy as np

from effvid.data.decoding import frame_to_rgb
from effvid.inference.live import LiveRecognizer, Reading
from effvid.serve.limits import ClientError, ServeLimits

PICTURE_FORMATS = ("JPEG", "PNG", "WEBP")


def decode_picture(data: bytes, limits: ServeLimits) -> np.ndarray:
    """One streamed frame -> uint8 (H, W, 3) RGB; ClientError when it is not a picture of an
    accepted format or is past the limits."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > limits.max_frame_kb * 1024:
        raise ClientError(f"a frame of {len(data) / 1024:.0f} kB: at most {limits.max_frame_kb:g}")
    try:
        with Image.open(io.BytesIO(data), formats=PICTURE_FORMATS) as image:
            width, height = image.size  # from the header: nothing decoded yet
            if width * height > limits.max_pixels:
                raise ClientError(
                    f"a frame of {width}x{height}: at most {limits.max_pixels} pixels"
                )
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        accepted = ", ".join(PICTURE_FORMATS)
        raise ClientError(f"a frame must be one picture ({accepted})") from None


class StreamSession:
    """One connection's stream: its own state and verdict window over a model shared by all."""

    def __init__(self, recognizer: LiveRecognizer) -> None:
        self.recognizer = copy.copy(recognizer)  # shares the model, not the state
        self.recognizer.restart()
        self.stride = recognizer.preprocessing.sampling_rate
        self.frames = 0
        self.reading: Reading | None = None
        self.started = time.monotonic()

    def push(self, rgb: np.ndarray) -> dict:
        """One camera frame (H, W, 3) -> the verdict after it (a model step every `stride`
        frames; the frames between keep the last verdict)."""
        index, self.frames = self.frames, self.frames + 1
        stepped = index % self.stride == 0
        if stepped:
            short_side = self.recognizer.preprocessing.short_side
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            resized = frame_to_rgb(frame, short_side)  # as `effvid stream` resizes
            seconds = time.monotonic() - self.started
            self.reading = self.recognizer.push(resized, seconds=seconds, frame=index)
        return {**self.reading.as_dict(), "frame": index, "step": stepped}
