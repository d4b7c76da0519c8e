"""Shared test helpers: where the reference data lives, small inputs for any model, and a tiny
real video dataset with recipes that train on it in seconds."""

import os
from pathlib import Path

import pytest
import torch
import yaml

import effvid
from effvid import ModelCard
from effvid.train.config import load_config

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("EFFVID_SHARED", REPO_ROOT.parent / "shared"))


# What runs: `make test` runs every test but the `edge` ones, which `make test-edge` runs (CI runs
# both). The other marks only let a developer leave some out: `make test-quick` leaves out `slow`
# (over ~20 s on 2 cores), `subprocess` (starts effvid or torchrun as another process, kills or
# signals it), `reference` (reads ../shared/reference: given below to every test that uses the
# `reference_dir` fixture, directly or through another fixture) and `browser` (drives Chromium).


def pytest_collection_modifyitems(items):
    for item in items:
        if "reference_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.reference)


# CI sets EFFVID_REQUIRE_REFERENCE=1: there the parity tests must run, never skip.
REQUIRE_REFERENCE = os.environ.get("EFFVID_REQUIRE_REFERENCE") == "1"


@pytest.fixture(scope="session")
def reference_dir():
    """`../shared/reference`; a skip when this clone has no shared folder beside it (a failure
    under EFFVID_REQUIRE_REFERENCE=1)."""
    path = SHARED_DIR / "reference"
    if not path.is_dir():
        message = f"reference data not found at {path} (set EFFVID_SHARED to its parent)"
        if REQUIRE_REFERENCE:
            pytest.fail(message + "; EFFVID_REQUIRE_REFERENCE=1 forbids skipping")
        pytest.skip(message)
    return path


# The smallest cheap input each family accepts, as (frames, size); default (4, 64).
SMALL_INPUT = {"dualformer": (8, 224)}
# Overrides that shrink a family so that backward passes stay fast; default: as registered.
REDUCED_CONFIG = {
    "dualformer": dict(embed_dims=(16, 32, 64, 128), num_heads=(1, 1, 2, 4), depths=(2, 2, 2, 2))
}


def small_input(card: ModelCard, batch: int = 2) -> torch.Tensor:
    """A cheap random input with the layout the model expects: (B, 3, T, H, W) or (B, 3, H, W)."""
    frames, size = SMALL_INPUT.get(card.family, (4, 64))
    shape = (batch, 3, frames, size, size) if card.is_video else (batch, 3, size, size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def reduced_model(name: str, **overrides) -> torch.nn.Module:
    """The registered model, shrunk for speed where its family needs it (see REDUCED_CONFIG)."""
    from effvid import create_model, get_model_card

    return create_model(name, **REDUCED_CONFIG.get(get_model_card(name).family, {}), **overrides)


# --- a tiny real video dataset (the demo generator at its smallest) and recipes on it ---


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> Path:
    """30 real mp4 clips of 8 frames at 32x32 (train 22, val 4, test 4), and a 5-video split."""
    from effvid.data import make_demo_data

    root = tmp_path_factory.mktemp("tiny_demo")
    make_demo_data(root, videos=30, num_frames=8, frame_size=32, progress=False, workers=1)
    lines = (root / "train.txt").read_text().splitlines()
    (root / "val5.txt").write_text("\n".join(lines[:5]) + "\n")
    return root


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
