"""Temporal Segment Networks' average consensus over an image model (Wang et al., ECCV 2016,
arXiv 1608.00859): every frame of a clip through a 2-D network on its own, the class scores
averaged over the frames. Nothing relates one frame to another, so this is the baseline that
shows how much of a task a video model can solve without modelling time (the VMF study's
per-frame arm).

`tsn_mobileformer_52m`: the image Mobile-Former 52M (the image counterpart of VMF-XXS) per frame.
An image Mobile-Former checkpoint loads directly (its keys get the `backbone.` prefix).
"""

import torch

from effvid.models.base import CheckpointAdapter, ClassifierModel, Features
from effvid.models.constants import IMAGENET_MEAN, IMAGENET_STD
from effvid.models.registry import ModelCard, create_model, get_model_card, register_model


def _image_checkpoint_into_backbone(
    model: "FrameAverage", state: dict[str, torch.Tensor]
) -> tuple[dict, list[str]]:
    if any(key.startswith("backbone.") for key in state):
        return state, []
    notes = ["read as an image-model checkpoint (keys prefixed with 'backbone.')"]
    return {f"backbone.{key}": value for key, value in state.items()}, notes


class FrameAverage(ClassifierModel):
    """A registered image model applied to every frame, logits averaged over the frames.

    x: (B, 3, T, H, W) -> logits (B, num_classes). `forward_features` gives the image model's
    feature maps stacked along time, (B, C, T, h, w), and its tokens per frame, (B, T, M, D).
    """

    checkpoint_adapter = CheckpointAdapter(_image_checkpoint_into_backbone)

    def __init__(
        self, *, backbone: str = "mobileformer_52m", num_classes: int = 400, **backbone_args
    ) -> None:
        super().__init__()
        self.backbone = create_model(backbone, num_classes=num_classes, **backbone_args)
        self.classifier_path = f"backbone.{self.backbone.classifier_path}"
        self.num_classes = num_classes
        self.num_features = self.backbone.num_features
        self.head_hidden_size = self.backbone.head_hidden_size

    def forward_features(self, x: torch.Tensor) -> Features:
        if x.ndim != 5:
            raise ValueError(f"FrameAverage expects clips (B, C, T, H, W), got {tuple(x.shape)}")
        batch = x.shape[0]
        frames = self.backbone.forward_features(x.transpose(1, 2).flatten(0, 1))
        feature_map = frames.feature_map.unflatten(0, (batch, -1)).transpose(1, 2)
        tokens = None if frames.tokens is None else frames.tokens.unflatten(0, (batch, -1))
        return Features(feature_map, tokens)

    def forward_head(self, features: Features, pre_logits: bool = False) -> torch.Tensor:
        """Per-frame logits (or pre-logits) of the image model, averaged over the frames."""
        feature_map = features.feature_map.transpose(1, 2).flatten(0, 1)
        tokens = None if features.tokens is None else features.tokens.flatten(0, 1)
        per_frame = self.backbone.forward_head(Features(feature_map, tokens), pre_logits)
        return per_frame.unflatten(0, (features.feature_map.shape[0], -1)).mean(dim=1)

    def no_weight_decay(self) -> set[str]:
        return {f"backbone.{name}" for name in self.backbone.no_weight_decay()}


def _card(backbone: str, frames: int, params: int, flops: int) -> ModelCard:
    image = get_model_card(backbone)
    return ModelCard(
        name=f"tsn_{backbone}",
        family="tsn",
        num_frames=frames,
        sampling_rate=8,
        input_size=image.input_size,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        num_classes=400,
        test_clips=2,
        test_crops=1,
        params=params,
        flops_per_view=flops,
        source="Temporal Segment Networks (arXiv 1608.00859), average consensus",
        notes=f"{backbone} on each of {frames} frames, logits averaged; no temporal modelling.",
        extras={"image_base": backbone},
    )


@register_model(_card("mobileformer_52m", 8, params=2_854_092, flops=409_380_992))
def tsn_mobileformer_52m(**overrides) -> FrameAverage:
    return FrameAverage(backbone="mobileformer_52m", **overrides)
