"""Batch-level Mixup (Zhang et al., arXiv 1710.09412) and CutMix (Yun et al., arXiv 1905.04899)
with label smoothing, for video batches (B, C, T, H, W).

Each batch mixes with its own reverse (sample i with sample B-1-i), as timm does. CutMix pastes the
same box into every frame of a clip: the box is a region of the scene, its duration the whole clip.
The targets become soft, (B, num_classes), summing to 1: train with `soft_target_cross_entropy`.
"""

import math

import torch
import torch.nn.functional as F


def smooth_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """(B,) int -> (B, K): 1 - smoothing + smoothing / K on the label, smoothing / K elsewhere."""
    off_value = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off_value)
    return targets.scatter_(1, labels.view(-1, 1), 1.0 - smoothing + off_value)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum(targets * log_softmax(logits)); logits and targets (B, K)."""
    return torch.sum(-targets * F.log_softmax(logits, dim=-1), dim=-1).mean()


class MixupCutmix:
    """(clips (B, C, T, H, W), labels (B,)) -> (mixed clips, soft targets (B, num_classes)).

    With probability `prob` a batch is mixed: CutMix with probability `switch_prob` when both
    alphas are positive (else whichever is positive), with a mixing weight drawn from
    Beta(alpha, alpha). CutMix's weight is corrected to the box's true area after clipping. Draws
    come from torch's global generator (seed it with `torch.manual_seed`).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        switch_prob: float = 0.5,
        prob: float = 1.0,
        label_smoothing: float = 0.1,
    ) -> None:
        self.num_classes = num_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.switch_prob = switch_prob
        self.prob = prob
        self.label_smoothing = label_smoothing

    @staticmethod
    def _uniform() -> float:
        return torch.rand(1).item()

    @staticmethod
    def _beta(alpha: float) -> float:
        return torch.distributions.Beta(alpha, alpha).sample().item()

    def __call__(
        self, clips: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        targets = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        use_mixup, use_cutmix = self.mixup_alpha > 0, self.cutmix_alpha > 0
        if self._uniform() >= self.prob or not (use_mixup or use_cutmix):
            return clips, targets
        if use_cutmix and (not use_mixup or self._uniform() < self.switch_prob):
            weight = self._beta(self.cutmix_alpha)
            height, width = clips.shape[-2:]
            cut = math.sqrt(1.0 - weight)
            box_h, box_w = round(height * cut), round(width * cut)
            centre_y, centre_x = int(self._uniform() * height), int(self._uniform() * width)
            top, bottom = max(centre_y - box_h // 2, 0), min(centre_y + box_h // 2, height)
            left, right = max(centre_x - box_w // 2, 0), min(centre_x + box_w // 2, width)
            clips = clips.clone()
            clips[..., top:bottom, left:right] = clips.flip(0)[..., top:bottom, left:right]
            weight = 1.0 - (bottom - top) * (right - left) / (height * width)
        else:
            weight = self._beta(self.mixup_alpha)
            clips = clips * weight + clips.flip(0) * (1.0 - weight)
        return clips, targets * weight + targets.flip(0) * (1.0 - weight)
