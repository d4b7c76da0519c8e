"""Video-level scores from view-level outputs, and the usual accuracies."""

from collections.abc import Sequence

import torch

from effvid.errors import InputError


def aggregate_views(view_logits: torch.Tensor, mode: str = "prob") -> torch.Tensor:
    """(views, classes) logits of one video -> (classes) scores: the mean of the softmax
    ('prob', the papers' protocol) or of the logits ('logits')."""
    if mode == "prob":
        return view_logits.softmax(dim=-1).mean(dim=0)
    if mode == "logits":
        return view_logits.mean(dim=0)
    raise InputError(f"aggregate must be 'prob' or 'logits', got {mode!r}")


def confusion_matrix(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int):
    """(true class, predicted class) counts, int64 (num_classes, num_classes)."""
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)


def classification_metrics(
    scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """top-k accuracies (%) and mean class accuracy (%) of (N, classes) scores."""
    num_classes = scores.shape[1]
    ranked = scores.topk(min(max(ks), num_classes), dim=1).indices
    hits = ranked == labels[:, None]
    metrics = {f"top{k}": 100.0 * hits[:, :k].any(dim=1).float().mean().item() for k in ks}
    matrix = confusion_matrix(ranked[:, 0], labels, num_classes)
    per_class = matrix.diag() / matrix.sum(dim=1).clamp(min=1)
    present = matrix.sum(dim=1) > 0
    metrics["mean_class_accuracy"] = 100.0 * per_class[present].float().mean().item()
    return metrics
