"""Training checkpoints: everything needed to continue a run as if it had never stopped.

`TrainingCheckpoint` is the layout, defined here only: the trainer writes and reads it through
this class, and `effvid.load_checkpoint` reads its `model` weights and its metadata (class
names, preprocessing, model name and arguments: `CheckpointMetadata`) like any other
checkpoint. The file holds plain data only (tensors, numbers, strings, lists, dicts), so it
loads with `weights_only=True`. It is written to a temporary file beside the target, read back
to prove it is whole, then renamed over the target: a crash or a full disk never leaves a
half-written checkpoint, and the previous one stays in place.

No random state is stored: the trainer draws every epoch's randomness from (seed, epoch, rank).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from effvid.files import atomic_write
from effvid.models.weights import CheckpointError, CheckpointMetadata, read_pickled_file

FORMAT_VERSION = 1


@dataclass
class TrainingCheckpoint:
    """A run's state at the end of an epoch."""

    model: dict[str, torch.Tensor]  # the weights (for best.pth: the evaluated ones, e.g. EMA)
    epoch: int  # epochs completed
    state: dict[str, Any]  # the trainer's RunState (steps, best top-1, history)
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    config: dict[str, Any]  # the resolved recipe
    metadata: CheckpointMetadata = field(default_factory=CheckpointMetadata)
    ema: dict[str, Any] | None = None

    def content(self) -> dict[str, Any]:
        """The file's top-level mapping."""
        return {
            "format_version": FORMAT_VERSION,
            "model": self.model,
            "epoch": self.epoch,
            "state": self.state,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            "config": self.config,
            "ema": self.ema,
            **self.metadata.as_content(),
        }

    @classmethod
    def from_content(cls, content: object, path: Path) -> "TrainingCheckpoint":
        required = ("model", "epoch", "state", "optimizer", "scheduler", "scaler")
        missing = [k for k in required if k not in content] if isinstance(content, dict) else []
        if not isinstance(content, dict) or missing:
            why = f"no {', '.join(missing)}" if missing else "not a mapping of named parts"
            raise CheckpointError(f"{path} is not an effvid training checkpoint ({why})")
        return cls(
            **{key: content[key] for key in required},
            config=content.get("config") or {},
            metadata=CheckpointMetadata.from_content(content),
            ema=content.get("ema"),
        )


def save_checkpoint(checkpoint: TrainingCheckpoint, path: str | Path) -> Path:
    """Write `checkpoint` atomically to `path`, after checking that what was written reads back."""
    path = Path(path)
    with atomic_write(path) as temporary:
        with temporary.open("wb") as handle:
            torch.save(checkpoint.content(), handle)
        read_training_checkpoint(temporary, mmap=True)  # whole and readable, or we stop here
    return path


def read_training_checkpoint(path: str | Path, *, mmap: bool = False) -> TrainingCheckpoint:
    """A training checkpoint; CheckpointError if it is missing, truncated, holds Python objects
    effvid will not unpickle, or is not a training checkpoint.

    With `mmap` the tensors are mapped, not read (a cheap check that the file is whole)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    return TrainingCheckpoint.from_content(read_pickled_file(path, mmap=mmap), path)
