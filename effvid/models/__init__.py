"""Model families. Importing this package registers every variant."""

from effvid.models import dualformer, mobile_former, video_mobile_former, x3d  # noqa: F401
from effvid.models.base import ClassifierModel, Features
from effvid.models.registry import (
    ModelCard,
    create_model,
    get_model_card,
    list_models,
    register_model,
)
from effvid.models.weights import load_checkpoint, load_model

__all__ = [
    "ClassifierModel",
    "Features",
    "ModelCard",
    "create_model",
    "get_model_card",
    "list_models",
    "load_checkpoint",
    "load_model",
    "register_model",
]
