"""`effvid serve`: a trained model behind HTTP (`/v1/predict`, `/v1/features`, `/v1/model`), a
WebSocket for live recognition of a browser's camera (`/v1/stream`) and a page at `/` that uses
both. Needs the `serve` extra (FastAPI, uvicorn)."""

from effvid.serve.limits import ClientError, ServeLimits
from effvid.serve.model import ServedModel, open_served_model

__all__ = ["ClientError", "ServeLimits", "ServedModel", "open_served_model"]
