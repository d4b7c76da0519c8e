"""effvid: efficient video recognition."""

from effvid.deploy.flops import FlopCount, count_flops, count_params
from effvid.models import ModelCard, create_model, get_model_card, list_models
from effvid.models.checkpoints import CheckpointError, LoadReport, load_checkpoint, load_model

__all__ = [
    "CheckpointError",
    "FlopCount",
    "LoadReport",
    "ModelCard",
    "Predictor",
    "count_flops",
    "count_params",
    "create_model",
    "get_model_card",
    "list_models",
    "load_checkpoint",
    "load_model",
]
__version__ = "0.1.0"


def __getattr__(name: str):
    # The predictor pulls in video decoding: loaded on first use, not with `import effvid`.
    if name == "Predictor":
        from effvid.engine.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'effvid' has no attribute {name!r}")
