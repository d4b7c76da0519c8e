"""Model families. Importing this package registers every variant."""

from effvid.models import dualformer, mobile_former, video_mobile_former, x3d  # noqa: F401
from effvid.models.checkpoints import load_checkpoint, load_model
from effvid.models.registry import (
    ModelCard,
    Preprocessing,
    create_model,
    get_model_card,
    list_models,
    register_model,
)

__all__ = [
    "ModelCard",
    "Preprocessing",
    "create_model",
    "get_model_card",
    "list_models",
    "load_checkpoint",
    "load_model",
    "register_model",
]
