"""Class names and preprocessing of the official checkpoints effvid reads (DualFormer's
Kinetics-400 checkpoints, the image Mobile-Former's ImageNet-1k ones), which carry none
themselves."""

from effvid.models.weights import CheckpointMetadata


def official_metadata(model_name: str, num_classes: int) -> CheckpointMetadata | None:
    """The metadata of an official checkpoint of registered model `model_name` whose classifier
    has `num_classes` outputs, or None if effvid knows no official checkpoint of that shape."""
    return None
