"""Which run a run folder holds, and when a training may continue it.

A run folder (`output.dir`) belongs to one run: one recipe (the model and its arguments among
it) and one list of class names in label order, both recorded in every checkpoint it holds
(`TrainingCheckpoint.config` and `.metadata`). A training continues a run (from the folder's
`last.pth`, or from a checkpoint given with `--resume`) only under a recipe that differs from the
recorded one in the keys of `MAY_CHANGE_ON_RESUME`, and on data with the same classes in the same
order. Anything else is refused, naming the first difference and the ways out: the recipe the run
was trained with, another `output.dir`, or a fresh start (`effvid train --restart`), which
discards the folder's checkpoints before its first epoch. So `config.yaml` and the checkpoints
never describe weights trained with another recipe.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from effvid.errors import EffvidError
from effvid.train.config import DEFAULTS
from effvid.train.recipe_schema import MAY_CHANGE_ON_RESUME
from effvid.train.training_checkpoint import TrainingCheckpoint

# What a run writes that describes its weights (a fresh start removes them; the bad-video
# reports, the log and the TensorBoard events are rewritten or purged by the new run itself).
RUN_RECORDS = ("last.pth", "best.pth", "epoch_*.pth", "metrics.jsonl", "training_curves.png")
_UNSET = object()


class RunFolderError(EffvidError):
    """A training would continue a run under a recipe or classes it was not trained with."""


def flatten(recipe: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 0.1}} -> {'train.lr': 0.1}; mappings inside are flattened too (model.args
    gives 'model.args.causal')."""
    flat: dict[str, Any] = {}
    for key, value in recipe.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def first_difference(trained: Mapping, requested: Mapping) -> tuple[str, Any, Any] | None:
    """The first key (in the schema's order, then model.args) whose value differs between two
    resolved recipes, outside `MAY_CHANGE_ON_RESUME`: (key, trained value, requested value), a
    value absent on one side being `_UNSET`. Keys a recipe lacks take their defaults (a run
    recorded before a key existed)."""
    defaults = flatten(DEFAULTS)
    before, after = {**defaults, **flatten(trained)}, {**defaults, **flatten(requested)}
    for key in dict.fromkeys([*before, *after]):
        if key in MAY_CHANGE_ON_RESUME or key == "model.args":  # {} when no argument is given
            continue
        old, new = before.get(key, _UNSET), after.get(key, _UNSET)
        if old != new:
            return key, old, new
    return None


def _shown(value: Any) -> str:
    return "(not set)" if value is _UNSET else json.dumps(value)


def _ways_out(source: Path) -> str:
    recipe = source.parent / "config.yaml"
    recorded = str(recipe) if recipe.is_file() else f"the recipe recorded in {source}"
    return (
        f"continue it with the recipe it was trained with ({recorded}), write to another "
        "output.dir, or discard it and start afresh (effvid train --restart); on resume only "
        f"{', '.join(MAY_CHANGE_ON_RESUME)} may change"
    )


def check_recipe(source: Path, checkpoint: TrainingCheckpoint, config: Mapping) -> None:
    """RunFolderError unless the run in `checkpoint` (read from `source`) may continue under
    `config`. A checkpoint recorded without its recipe is held to its model name and
    arguments."""
    metadata = checkpoint.metadata
    if checkpoint.config:
        trained, requested = checkpoint.config, config
    else:  # recorded before checkpoints held their recipe: its model is what can be compared
        trained = {"model": {"name": metadata.model_name, "args": metadata.model_args or {}}}
        requested = {"model": {key: config["model"][key] for key in ("name", "args")}}
    difference = first_difference(trained, requested)
    if difference is not None:
        key, old, new = difference
        raise RunFolderError(
            f"{source} was trained with {key}={_shown(old)}, this recipe has "
            f"{key}={_shown(new)}: {_ways_out(source)}"
        )
    epochs = config["train"]["epochs"]
    if checkpoint.epoch > epochs:
        raise RunFolderError(
            f"{source} has trained {checkpoint.epoch} epochs, more than train.epochs={epochs}: "
            f"give train.epochs={checkpoint.epoch} or more to continue it, write to another "
            "output.dir, or discard it and start afresh (effvid train --restart)"
        )


def check_classes(source: Path, recorded: Sequence[str], class_names: Sequence[str]) -> None:
    """RunFolderError unless the run of `source`, trained on the classes `recorded` (none:
    not recorded), may continue on data with `class_names`: the same, in the same order."""
    recorded = list(recorded)
    if recorded and recorded != list(class_names):
        pairs = enumerate(zip(recorded, class_names, strict=False))
        shorter = min(len(recorded), len(class_names))
        label = next((i for i, (old, new) in pairs if old != new), shorter)
        old = repr(recorded[label]) if label < len(recorded) else "(none)"
        new = repr(class_names[label]) if label < len(class_names) else "(none)"
        raise RunFolderError(
            f"{source} was trained on {len(recorded)} classes with label {label} = {old}, the "
            f"data now gives {len(class_names)} classes with label {label} = {new} (classes "
            f"added, removed or in another order): {_ways_out(source)}"
        )


def recorded_run(run_dir: Path) -> Path | None:
    """The checkpoint that says which run `run_dir` holds: last.pth, else best.pth (a run killed
    between the two at its first epoch); None for a folder without a trained epoch."""
    for name in ("last.pth", "best.pth"):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def discard_run(run_dir: Path) -> list[Path]:
    """Remove what describes the weights of the run in `run_dir` (a fresh start); returns the
    files removed."""
    removed = [path for pattern in RUN_RECORDS for path in sorted(run_dir.glob(pattern))]
    for path in removed:
        path.unlink()
    return removed
