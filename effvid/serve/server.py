"""Run the application with uvicorn: `effvid serve`."""

from effvid.extras import require
from effvid.serve.limits import ServeLimits
from effvid.serve.model import ServedModel


def serve(
    served: ServedModel,
    limits: ServeLimits,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    decode_threads: int = 2,
    log_level: str = "info",
) -> None:
    """Serve until interrupted. A WebSocket message larger than a frame may be is refused by the
    protocol itself (uvicorn's `ws_max_size`)."""
    for module in ("fastapi", "uvicorn", "multipart", "websockets"):
        require(module, "serve", package="python-multipart" if module == "multipart" else None)
    import uvicorn

    from effvid.serve.app import create_app

    app = create_app(served, limits, decode_threads=decode_threads)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        ws="websockets-sansio",
        ws_max_size=round(limits.max_frame_kb * 1024) + 1024,
    )
