"""Training checkpoints: everything needed to continue a run as if it had never stopped.

A checkpoint is one `.pth` file holding plain data only (tensors, numbers, strings, lists,
dicts), so it loads with `weights_only=True` and `effvid.load_checkpoint` reads its `model`
weights and `class_names` like any other checkpoint. It is written to a temporary file beside
the target, read back to prove it is whole, then renamed over the target: a crash or a full disk
never leaves a half-written checkpoint, and the previous one stays in place.
"""

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effvid.models.checkpoints import CheckpointError

FORMAT_VERSION = 1


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) random states, as plain data."""
    _, keys, position, has_gauss, cached_gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached_gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    keys, position, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state(
        ("MT19937", keys.numpy().astype(np.uint32), position, has_gauss, cached_gauss)
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(content: dict[str, Any], path: str | Path) -> Path:
    """Write `content` atomically to `path`, after checking that what was written reads back."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("wb") as handle:
            torch.save({**content, "format_version": FORMAT_VERSION}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        read_training_checkpoint(temporary, mmap=True)  # whole and readable, or we stop here
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_training_checkpoint(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """A training checkpoint's content; CheckpointError if it is missing, truncated or foreign.

    With `mmap` the tensors are mapped, not read (a cheap check that the file is whole)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {path} is corrupted or truncated and was not used "
            f"({type(error).__name__}: {str(error).splitlines()[0]})"
        ) from None
    missing = {"model", "epoch"} - set(content) if isinstance(content, dict) else {"model"}
    if missing:
        raise CheckpointError(f"{path} is not an effvid training checkpoint (no {missing})")
    return content
