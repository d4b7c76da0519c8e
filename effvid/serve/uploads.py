"""An uploaded video, from the multipart request to the clips a model reads.

The upload goes to a file of the server's own naming in a fresh temporary folder (the name the
client gives is only a label in the answer); its size is counted while it arrives and the
request is refused as soon as it passes the limit, whatever its Content-Length says. The file
is probed before anything is decoded: a duration or a frame size past the limits is refused
from the headers alone, and so is a request for more clips than the limit (a long timeline).
The clips are read as `effvid predict` reads them (`CollectionDataset`).
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from effvid.data import EvalClips, VideoDecodeError, VideoInfo, open_video
from effvid.data.decoding import VIDEO_EXTENSIONS
from effvid.inference.collection import ClipRequest, CollectionDataset, VideoClips
from effvid.serve.limits import ClientError, ServeLimits, TooLargeError, UnprocessableError

FIELD = "video"  # the form field that carries the file
CHUNK = 1 << 20


def size_limited(request: Request, limit: int) -> Request:
    """The same request, refused with a TooLargeError once its body passes `limit` bytes (at
    once when its Content-Length says so)."""
    too_large = TooLargeError(f"the upload is larger than the server takes ({limit / 2**20:g} MB)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    received = 0

    async def receive() -> dict:
        nonlocal received
        message = await request.receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise too_large
        return message

    return Request(request.scope, receive)


async def uploaded_file(request: Request, limits: ServeLimits) -> UploadFile:
    """The one video file of a multipart request (field `video`)."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ClientError(f"send the video as multipart/form-data, in a file field {FIELD!r}")
    try:
        form = await size_limited(request, limits.max_upload_bytes).form(max_files=1, max_fields=4)
    except MultiPartException as error:
        raise ClientError(f"malformed multipart request ({error.message})") from None
    upload = form.get(FIELD)
    if not isinstance(upload, UploadFile):
        # A text field, e.g. a path: the server reads only what the client uploads.
        raise ClientError(f"the request carries no file in the form field {FIELD!r}")
    return upload


def display_name(upload: UploadFile) -> str:
    """The client's file name without any folders, as a label only."""
    return PurePath((upload.filename or "upload").replace("\\", "/")).name[:200] or "upload"


@contextmanager
def stored_upload(upload: UploadFile) -> Iterator[Path]:
    """The upload as a file named by the server in a temporary folder, removed afterwards."""
    suffix = PurePath(upload.filename or "").suffix.lower()
    folder = Path(tempfile.mkdtemp(prefix="effvid-upload-"))
    try:
        path = folder / f"video{suffix if suffix in VIDEO_EXTENSIONS else ''}"
        upload.file.seek(0)
        with path.open("wb") as handle:
            shutil.copyfileobj(upload.file, handle, CHUNK)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def checked_info(path: Path, name: str, limits: ServeLimits) -> VideoInfo:
    """The video's headers, refused when it cannot be opened or is past the limits."""
    try:
        with open_video(path) as reader:
            info = reader.info
    except VideoDecodeError as error:
        raise UnprocessableError(str(VideoDecodeError(name, error.reason))) from None
    if info.width * info.height > limits.max_pixels:
        raise UnprocessableError(
            f"'{name}' is {info.width}x{info.height}: the server takes at most "
            f"{limits.max_pixels} pixels a frame"
        )
    if info.duration > limits.max_duration_s:
        raise UnprocessableError(
            f"'{name}' lasts {info.duration:.1f} s: the server takes at most "
            f"{limits.max_duration_s:g} s"
        )
    return info


def read_clips(
    path: Path, name: str, clips: EvalClips, request: ClipRequest, limits: ServeLimits
) -> VideoClips:
    """The clips `request` asks of the video at `path` (n, 3, T, S, S) with their spans, as
    `effvid predict` reads them; UnprocessableError naming `name` when it cannot be read."""
    info = checked_info(path, name, limits)
    plan = clips.plan(info, clips=request.clips, window=request.window, stride=request.stride)
    if len(plan) > limits.max_request_clips:
        raise UnprocessableError(
            f"'{name}' would take {len(plan)} clips: the server reads at most "
            f"{limits.max_request_clips} a request (ask for fewer clips or a longer stride)"
        )
    video = CollectionDataset([str(path)], clips, request).read(0)
    if video.error is not None:
        raise UnprocessableError(str(VideoDecodeError(name, video.error)))
    video.video = name
    return video
