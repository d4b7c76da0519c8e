"""Checkpoints of a tiny VMF-XXS with the tiny demo data's classes, causal and not."""

from pathlib import Path

import pytest
import torch

import effvid


def write_checkpoint(path: Path, classes: list[str], *, causal: bool) -> Path:
    """An effvid-style checkpoint of a randomly initialised vmf_xxs for `classes`, with the
    preprocessing of 4-frame clips of 32 px."""
    args = {"causal": True} if causal else {}
    model = effvid.create_model("vmf_xxs", num_classes=len(classes), **args)
    torch.save(
        {
            "model": model.state_dict(),
            "model_name": "vmf_xxs",
            "model_args": args,
            "class_names": classes,
            "preprocessing": {
                "num_frames": 4,
                "sampling_rate": 2,
                "crop_size": 32,
                "short_side": 32,
                "mean": [0.5] * 3,
                "std": [0.25] * 3,
            },
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def causal_checkpoint(tmp_path_factory, tiny_videos):
    classes = (tiny_videos / "classes.txt").read_text().split()
    return write_checkpoint(tmp_path_factory.mktemp("causal") / "causal.pth", classes, causal=True)


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory, tiny_videos):
    classes = (tiny_videos / "classes.txt").read_text().split()
    return write_checkpoint(tmp_path_factory.mktemp("clip") / "clip.pth", classes, causal=False)
