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
