"""Pictures of a run: the confusion matrix and the training curves, as PNG files."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed

import matplotlib.pyplot as plt
import torch

# Above this many classes the names no longer fit beside the matrix: the axes give indices (in
# the order of classes.txt) and the figure stops growing.
MAX_NAMED_CLASSES = 60
MAX_FIGURE_INCHES = 24.0


def plot_confusion_matrix(
    matrix: torch.Tensor, class_names: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """Row-normalised confusion matrix (true class per row) with the counts written in."""
    counts = matrix.float()
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    classes = len(class_names)
    size = min(MAX_FIGURE_INCHES, max(4.0, 0.55 * classes + 2))
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    if classes <= MAX_NAMED_CLASSES:
        ticks = range(classes)
        axes.set_xticks(ticks, class_names, rotation=60, ha="right", fontsize=8)
        axes.set_yticks(ticks, class_names, fontsize=8)
    axes.set_xlabel("predicted" if classes <= MAX_NAMED_CLASSES else "predicted class index")
    axes.set_ylabel("true" if classes <= MAX_NAMED_CLASSES else "true class index")
    if classes <= 30:
        for row in range(classes):
            for column in range(classes):
                value = int(matrix[row, column])
                if value:
                    color = "white" if rates[row, column] > 0.5 else "black"
                    axes.text(column, row, value, ha="center", va="center", fontsize=7, color=color)
    figure.colorbar(image, ax=axes, fraction=0.046, label="fraction of the true class")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)


def plot_training_curves(history: Sequence[Mapping[str, float]], path: str | Path) -> Path:
    """Loss and accuracy per epoch from the metrics log (one mapping per epoch)."""
    epochs = [row["epoch"] for row in history]
    figure, (loss_axes, accuracy_axes) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axes.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
    loss_axes.set_xlabel("epoch")
    loss_axes.set_ylabel("loss")
    loss_axes.legend()
    for key, label in [("train_top1", "train (clips)"), ("val_top1", "val (videos)")]:
        points = [(row["epoch"], row[key]) for row in history if key in row]
        if points:
            accuracy_axes.plot(*zip(*points, strict=True), marker="o", label=label)
    accuracy_axes.set_xlabel("epoch")
    accuracy_axes.set_ylabel("top-1 accuracy (%)")
    accuracy_axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return Path(path)
