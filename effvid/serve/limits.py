"""What the server takes from a client, and the errors that say a request went past it.

Every limit is a field of `ServeLimits` and an option of `effvid serve`. A request that breaks
one, or that is not what an endpoint takes, ends in a `ClientError`: an HTTP status of the 4xx
family and a message of one line, never a traceback.
"""

from dataclasses import asdict, dataclass

from effvid.errors import EffvidError, InputError

MEGABYTE = 1 << 20


@dataclass(frozen=True)
class ServeLimits:
    """Bounds on what one request, one stream and the whole server take on.

    `batch_wait_ms`: how long the first request of a batch waits for others before the model
    runs (0: no wait; the requests already queued still share a call); `batch_clips`: the most
    clips in one model call (a request is never split: 1 means one request per call, no
    batching)."""

    max_upload_mb: float = 64.0
    max_duration_s: float = 300.0
    max_pixels: int = 3840 * 2160  # per frame: 4K
    max_request_clips: int = 64  # clips read from one upload (a timeline's windows)
    max_frame_kb: float = 2048.0  # one streamed picture, encoded
    max_streams: int = 4
    request_timeout_s: float = 60.0
    batch_wait_ms: float = 5.0
    batch_clips: int = 32

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not (value > 0 or (name == "batch_wait_ms" and value == 0)):
                raise InputError(f"{name} must be positive, got {value}")

    @property
    def max_upload_bytes(self) -> int:
        return round(self.max_upload_mb * MEGABYTE)

    def as_dict(self) -> dict:
        return asdict(self)


class ClientError(EffvidError):
    """A request the server will not serve: `status` (4xx) and one line that says why."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class TooLargeError(ClientError):
    status = 413


class UnprocessableError(ClientError):
    """The request is well formed, but what it carries cannot be used (not a video, too long)."""

    status = 422
