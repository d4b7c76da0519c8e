"""A tiny real video dataset (the demo generator at its smallest) and recipes that train on it
in seconds."""

from pathlib import Path

import pytest
import yaml

from effvid.data import make_demo_data
from effvid.engine.config import load_config


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> Path:
    """30 real mp4 clips of 8 frames at 32x32 (train 22, val 4, test 4), and a 5-video split."""
    root = tmp_path_factory.mktemp("tiny_demo")
    make_demo_data(root, videos=30, num_frames=8, frame_size=32, progress=False, workers=1)
    lines = (root / "train.txt").read_text().splitlines()
    (root / "val5.txt").write_text("\n".join(lines[:5]) + "\n")
    return root


def tiny_recipe(videos: Path, run_dir: Path, **changes) -> dict:
    """A complete recipe (as a mapping) for vmf_xxs on the tiny videos."""
    recipe = {
        "model": {"name": "vmf_xxs"},
        "data": {
            "format": "list",
            "train": str(videos / "train.txt"),
            "val": str(videos / "val5.txt"),
            "test": str(videos / "test.txt"),
            "root": str(videos),
            "classes": str(videos / "classes.txt"),
            "num_frames": 4,
            "sampling_rate": 2,
            "crop_size": 32,
            "short_side": 32,
            "workers": 0,
        },
        "train": {"epochs": 2, "batch_size": 4, "lr": 2e-3, "warmup_epochs": 0.5},
        "eval": {"clips": 2, "crops": 1},
        "output": {"dir": str(run_dir)},
    }
    for key, value in changes.items():
        section, name = key.split("__")
        recipe[section][name] = value
    return recipe


def write_recipe(recipe: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(recipe))
    return path


def tiny_config(videos: Path, run_dir: Path, **changes) -> dict:
    return load_config(tiny_recipe(videos, run_dir, **changes))
