"""The pictures a run leaves: readable at any class count, of a bounded size."""

import time

import pytest
import torch
from PIL import Image

from effvid.train.plots import plot_confusion_matrix


@pytest.mark.parametrize("classes", [3, 400])
def test_a_confusion_matrix_picture_stays_small_at_any_class_count(classes, tmp_path):
    """Kinetics-400's 400 classes: drawn each time validation improves, so it must stay a
    picture a tracker and a browser show (it was 26,000 px wide), drawn in seconds."""
    matrix = torch.randint(0, 5, (classes, classes))
    names = [f"class {index}" for index in range(classes)]
    start = time.perf_counter()
    path = plot_confusion_matrix(matrix, names, tmp_path / "confusion.png", title="val")
    assert time.perf_counter() - start < 20
    width, height = Image.open(path).size
    assert max(width, height) <= 3200
    assert min(width, height) >= 400
