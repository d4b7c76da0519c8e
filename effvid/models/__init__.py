"""Model families. Importing this package registers every variant."""

from effvid.models import mobile_former, video_mobile_former  # noqa: F401  (registration)
from effvid.models.registry import (
    ModelCard,
    create_model,
    get_model_card,
    list_models,
    register_model,
)

__all__ = ["ModelCard", "create_model", "get_model_card", "list_models", "register_model"]
