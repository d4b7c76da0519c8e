"""`effvid serve`'s application: the HTTP API, the camera WebSocket and the page, on FastAPI.

    GET  /                the page (no build step: one HTML file, a script and a style sheet)
    GET  /healthz         {"status": "ok"}
    GET  /v1/model        model card, class names, preprocessing, what the server can do, limits
    POST /v1/predict      multipart `video` -> the record `effvid predict --json` writes
    POST /v1/features     multipart `video` -> its features (`effvid features`)
    POST /v1/explain      multipart `video` -> label and token-attention animation (GIF, base64)
    WS   /v1/stream       camera frames in, one verdict per frame out (`streams`)

Threads: the event loop only receives, batches and answers. Uploads are stored, probed and
decoded on a pool of decoding threads, so that a slow upload or a long video never stalls the
others; the clip model runs on one thread of its own (`ClipBatcher`), the streaming steps of
every connection on another. Every error a client causes is a `ClientError`: a 4xx status and
`{"error": "<one line>"}`.
"""

import asyncio
import base64
import logging
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from effvid.errors import EffvidError
from effvid.inference.collection import ClipFunction, ClipRequest, VideoClips
from effvid.inference.prediction_files import prediction_record
from effvid.inference.predictor import Predictor
from effvid.serve.batching import ClipBatcher
from effvid.serve.limits import ClientError, ServeLimits
from effvid.serve.model import ServedModel
from effvid.serve.streams import StreamSession, decode_picture
from effvid.serve.uploads import display_name, read_clips, stored_upload, uploaded_file

PAGE = Path(__file__).parent / "page"
logger = logging.getLogger("effvid.serve")


class Server:
    """The model, the limits and the threads one application shares between requests."""

    def __init__(self, served: ServedModel, limits: ServeLimits, decode_threads: int) -> None:
        self.served = served
        self.limits = limits
        self.decoding = ThreadPoolExecutor(decode_threads, thread_name_prefix="effvid-decode")
        self.model_thread = ThreadPoolExecutor(1, thread_name_prefix="effvid-model")
        self.stream_thread = ThreadPoolExecutor(1, thread_name_prefix="effvid-stream")
        self.batchers: dict[str, ClipBatcher] = {}
        self.streams = 0
        self.explaining = asyncio.Semaphore(1)

    def batcher(self, name: str, function_of: Callable[[], ClipFunction]) -> ClipBatcher:
        """The batcher of one model function ('logits', 'features:<layer>'), made once."""
        if name not in self.batchers:
            self.batchers[name] = ClipBatcher(
                function_of(), self.model_thread,
                wait_s=self.limits.batch_wait_ms / 1000, max_clips=self.limits.batch_clips,
            )  # fmt: skip
        return self.batchers[name]

    async def in_time(self, work: Awaitable) -> Any:
        """`work`, or a ClientError (408) once it takes longer than the request time limit."""
        try:
            return await asyncio.wait_for(work, self.limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise ClientError(
                f"the request took longer than {self.limits.request_timeout_s:g} s", 408
            ) from None

    async def clips_of(self, request: Request, clip_request: ClipRequest) -> VideoClips:
        """The uploaded video's clips, read on a decoding thread."""
        upload = await uploaded_file(request, self.limits)
        name = display_name(upload)
        clips = self.served.predictor.clips

        def read() -> VideoClips:
            with stored_upload(upload) as path:
                return read_clips(path, name, clips, clip_request, self.limits)

        try:
            return await asyncio.get_running_loop().run_in_executor(self.decoding, read)
        finally:
            await upload.close()  # its spooled copy

    def close(self) -> None:
        for pool in (self.decoding, self.model_thread, self.stream_thread):
            pool.shutdown(wait=False, cancel_futures=True)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _validation_message(error: RequestValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body"))
    return _one_line(f"{where}: {first.get('msg', 'invalid value')}")


def create_app(
    served: ServedModel, limits: ServeLimits | None = None, *, decode_threads: int = 2
) -> FastAPI:
    """The application serving `served` within `limits` (default: `ServeLimits()`)."""
    server = Server(served, limits or ServeLimits(), decode_threads)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        server.close()

    app = FastAPI(title="effvid", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = server

    @app.exception_handler(ClientError)
    async def client_error(request: Request, error: ClientError) -> JSONResponse:
        return JSONResponse({"error": _one_line(str(error))}, status_code=error.status)

    @app.exception_handler(EffvidError)
    async def bad_value(request: Request, error: EffvidError) -> JSONResponse:
        return JSONResponse({"error": _one_line(str(error))}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(error)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": _one_line(error.detail)}, status_code=error.status_code)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("internal error on %s", request.url.path)
        return JSONResponse({"error": "internal error (logged by the server)"}, status_code=500)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    app.mount("/page", StaticFiles(directory=PAGE), name="page")

    @app.get("/favicon.ico", include_in_schema=False)
    async def no_icon() -> Response:
        return Response(status_code=204)

    @app.get("/healthz")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model_card() -> dict:
        return {**served.card(), "limits": server.limits.as_dict()}

    @app.post("/v1/predict")
    async def predict(
        request: Request,
        top_k: Annotated[int, Query(ge=1, le=1000)] = 5,
        clips: Annotated[int | None, Query(ge=1)] = None,
        timeline: bool = False,
        window: Annotated[float, Query(gt=0, le=600)] = 2.0,
        stride: Annotated[float, Query(ge=0.1, le=600)] = 1.0,
    ) -> dict:
        """The uploaded video's top-k classes, or its timeline: `effvid predict --json`'s
        record for it."""
        clip_request = ClipRequest(clips=clips)
        if timeline:
            clip_request = ClipRequest(window=window, stride=stride)
        clip_request = clip_request.for_model(served.predictor.card)
        predictor = served.predictor

        async def work() -> dict:
            video = await server.clips_of(request, clip_request)
            outputs = await server.batcher("logits", lambda: _logits_of(predictor))(video.clips)
            return prediction_record(
                video.video, outputs["logits"], video.spans, k=top_k,
                class_names=predictor.class_names, timeline=timeline,
            )  # fmt: skip

        return await server.in_time(work())

    @app.post("/v1/features")
    async def features(
        request: Request,
        layer: str = "pre_logits",
        per_clip: bool = False,
        clips: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict:
        """The uploaded video's features from `layer` (`effvid features`): the clips' mean, or
        one row per clip with its span."""
        if served.checkpoint is None:
            raise ClientError("features need the server to run a checkpoint (--checkpoint)")
        batcher = server.batcher(f"features:{layer}", lambda: served.feature_function(layer))
        clip_request = ClipRequest(clips=clips).for_model(served.predictor.card)

        async def work() -> dict:
            video = await server.clips_of(request, clip_request)
            rows = (await batcher(video.clips))["features"]
            spans = video.spans
            if not per_clip:
                rows, spans = rows.mean(dim=0, keepdim=True), [(spans[0][0], spans[-1][1])]
            return {
                "video": video.video,
                "layer": layer,
                "features": rows.flatten(1).tolist(),
                "spans": [[round(start, 3), round(end, 3)] for start, end in spans],
            }

        return await server.in_time(work())

    @app.post("/v1/explain")
    async def explain(request: Request, fps: Annotated[float, Query(gt=0, le=30)] = 4.0) -> dict:
        """What the model looks at in the uploaded video (`effvid explain`): the label and the
        animation of its token attention (Grad-CAM for models without tokens), as a GIF."""
        if served.checkpoint is None:
            raise ClientError("explanations need the server to run a checkpoint (--checkpoint)")

        async def work() -> dict:
            upload = await uploaded_file(request, server.limits)
            name = display_name(upload)
            try:
                async with server.explaining:  # one at a time: it holds a model's activations
                    return await asyncio.get_running_loop().run_in_executor(
                        server.model_thread, _explanation, served, upload, name, fps, server.limits
                    )
            finally:
                await upload.close()

        return await server.in_time(work())

    @app.websocket("/v1/stream")
    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        if served.recognizer is None:
            await _refuse(websocket, served.stream_refusal or "no streaming model", 1008)
            return
        if server.streams >= server.limits.max_streams:
            message = f"the server already has {server.streams} streams, its limit; try later"
            await _refuse(websocket, message, 1013)
            return
        server.streams += 1
        try:
            await _run_stream(websocket, server)
        except WebSocketDisconnect:
            pass
        finally:
            server.streams -= 1

    return app


def _logits_of(predictor: Predictor) -> ClipFunction:
    return lambda clips: {"logits": predictor.model(clips)}


def _explanation(served: ServedModel, upload, name: str, fps: float, limits) -> dict:
    from effvid.explain import explain_video
    from effvid.serve.uploads import checked_info

    with stored_upload(upload) as path, tempfile.TemporaryDirectory() as folder:
        checked_info(path, name, limits)
        explanation = explain_video(path, served.model_name, served.checkpoint)
        animation = explanation.save(folder, animation="gif", fps=fps)[0]
        return {
            "video": name,
            "label": explanation.label,
            "score": round(explanation.score, 5),
            "method": explanation.method,
            "source": explanation.source,
            "gif": base64.b64encode(animation.read_bytes()).decode("ascii"),
        }


async def _refuse(websocket: WebSocket, message: str, code: int) -> None:
    """Say why in a message, then close with `code` and the reason cut to what a close frame
    holds."""
    await websocket.send_json({"error": message})
    await websocket.close(code, message.encode()[:120].decode(errors="ignore"))


async def _run_stream(websocket: WebSocket, server: Server) -> None:
    """Frames in, verdicts out, until the client leaves or sends nothing for the request time."""
    loop = asyncio.get_running_loop()
    recognizer = server.served.recognizer
    session = StreamSession(recognizer)
    preprocessing = recognizer.preprocessing
    await websocket.send_json({
        "ready": True, "short_side": preprocessing.short_side,
        "sampling_rate": preprocessing.sampling_rate, "window": recognizer.window,
    })  # fmt: skip
    while True:
        try:
            message = await asyncio.wait_for(websocket.receive(), server.limits.request_timeout_s)
        except asyncio.TimeoutError:
            wait = server.limits.request_timeout_s
            await _refuse(websocket, f"no frame for {wait:g} s: stream closed", 1008)
            return
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None:
            await websocket.send_json({"error": "send each frame as one binary message"})
            continue
        try:
            rgb = await loop.run_in_executor(server.decoding, decode_picture, data, server.limits)
            reply = await loop.run_in_executor(server.stream_thread, session.push, rgb)
        except ClientError as error:
            reply = {"error": str(error)}
        await websocket.send_json(reply)
