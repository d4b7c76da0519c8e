"""effvid: efficient video recognition."""

from effvid.models import ModelCard, create_model, get_model_card, list_models

__all__ = ["ModelCard", "create_model", "get_model_card", "list_models"]
__version__ = "0.1.0"
