"""Model families. Importing this package registers every variant."""

from effvid.models import mobile_former  # noqa: F401  (registers the variants)
from effvid.models.registry import (
    ModelCard,
    create_model,
    get_model_card,
    list_models,
    register_model,
)

__all__ = ["ModelCard", "create_model", "get_model_card", "list_models", "register_model"]
