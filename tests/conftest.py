"""Shared test helpers: where the reference data lives, and small inputs for any model."""

import os
from pathlib import Path

import pytest
import torch

from effvid import ModelCard

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("EFFVID_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def reference_dir():
    """`../shared/reference`, or a skip when this clone has no shared folder beside it."""
    path = SHARED_DIR / "reference"
    if not path.is_dir():
        pytest.skip(f"reference data not found at {path} (set EFFVID_SHARED to its parent)")
    return path


def small_input(card: ModelCard, batch: int = 2, size: int = 64, frames: int = 4) -> torch.Tensor:
    """A cheap random input with the layout the model expects: (B, 3, T, H, W) or (B, 3, H, W)."""
    shape = (batch, 3, frames, size, size) if card.is_video else (batch, 3, size, size)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))
