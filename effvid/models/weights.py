"""Load weights into an effvid model: read safely, unwrap, inflate 2-D to 3-D, check, report.

Files are read without unpickling arbitrary objects: `.safetensors` with safetensors, anything
else with `torch.load(weights_only=True)`. The usual containers are unwrapped (`state_dict`,
`model`, `state_dict_ema`; `module.` and `_orig_mod.` key prefixes), so a bare state dict, a
timm or effvid training checkpoint and a DDP or compiled model's weights all load.

A model family adapts foreign layouts first with its declared `checkpoint_adapter` (e.g.
DualFormer: official mmaction and 2-D ImageNet layouts, and its inflation rule).

Besides weights, a checkpoint may carry `CheckpointMetadata` (the class names, the input
preprocessing, the registered model and its constructor arguments): effvid training checkpoints
do, and `load_model` uses it to rebuild the model as it was trained.

An image checkpoint loads into its video counterpart by inflation: every 2-D conv kernel
(C_out, C_in, kh, kw) becomes (C_out, C_in, kt, kh, kw), either 'centre' (the 2-D kernel in the
middle temporal slice, zeros elsewhere: the video model then equals the image model on each
frame) or 'replicate' (the I3D rule: the kernel copied to every slice and divided by kt; on a
static clip this equals the image model except near the first and last frames, where the
temporal zero padding is seen). A (2+1)-D depthwise conv gets the 2-D kernel in its spatial
part and an identity ('centre') or averaging ('replicate') temporal kernel.
"""

import argparse
import logging
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from effvid.errors import EffvidError, InputError
from effvid.models.base import CheckpointAdapter, ClassifierModel, Inflation

logger = logging.getLogger(__name__)

_CONTAINER_KEYS = ("state_dict", "model", "state_dict_ema", "module")
_KEY_PREFIXES = ("module.", "_orig_mod.")
_LISTED_KEYS = 8
# Plain-data classes that training checkpoints commonly hold besides tensors (timm saves its
# argparse options under 'args'); unpickling them only sets attributes.
_SAFE_GLOBALS = [argparse.Namespace]


class CheckpointError(EffvidError, ValueError):
    """A checkpoint cannot be read, or does not fit the model; the message says why."""


@dataclass
class LoadReport:
    """What `load_checkpoint` did."""

    source: str
    loaded: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    new_classifier: str | None = None
    notes: list[str] = field(default_factory=list)
    class_names: list[str] | None = None
    preprocessing: dict | None = None

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.source}", *self.notes]
        if self.inflated:
            lines.append(f"inflated {len(self.inflated)} 2-D kernels to 3-D")
        if self.new_classifier:
            lines.append(self.new_classifier)
        if self.missing:
            lines.append(
                f"left at their initial values (not in the checkpoint): {_few(self.missing)}"
            )
        if self.unexpected:
            lines.append(f"ignored (not in the model): {_few(self.unexpected)}")
        return "; ".join(lines)


def _few(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LISTED_KEYS])
    more = len(keys) - _LISTED_KEYS
    return f"{len(keys)} keys ({shown}{f', ... {more} more' if more > 0 else ''})"


def read_pickled_file(path: Path, *, mmap: bool = False) -> object:
    """A `torch.save` file read with `weights_only=True`: tensors and plain containers only.

    A file holding other Python objects is refused ("refusing to unpickle"), never executed;
    a truncated or foreign file is reported as such. Either way a CheckpointError."""
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"refusing to unpickle {path}: it holds Python objects other than tensors and plain "
            "containers, and effvid never unpickles them (weights_only=True). If you trust the "
            f"file, load it yourself and pass the state dict. Detail: {_first_line(error)}"
        ) from None
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {path} is corrupted or truncated (or not a PyTorch file) and was not "
            f"used: {type(error).__name__}: {_first_line(error)}"
        ) from None


def _first_line(error: Exception) -> str:
    """The first sentence of an error's message (library messages can run for lines)."""
    lines = str(error).splitlines()
    return lines[0].split(". ")[0] if lines else ""


def _read_file(path: Path) -> object:
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    if path.suffix != ".safetensors":
        return read_pickled_file(path)
    try:
        return load_file(path)
    except Exception as error:
        raise CheckpointError(
            f"checkpoint {path} is not a readable safetensors file: {type(error).__name__}: "
            f"{_first_line(error)}"
        ) from None


@dataclass(frozen=True)
class CheckpointMetadata:
    """What a checkpoint may carry besides weights, as top-level keys of the same names: the
    class names, the preprocessing of the input (`Preprocessing.as_dict`), the registered model
    and its constructor overrides. effvid training checkpoints write all four."""

    class_names: list[str] | None = None
    preprocessing: dict | None = None
    model_name: str | None = None
    model_args: dict = field(default_factory=dict)

    def as_content(self) -> dict:
        return {
            "class_names": self.class_names,
            "preprocessing": self.preprocessing,
            "model_name": self.model_name,
            "model_args": self.model_args,
        }

    @classmethod
    def from_content(cls, content: object) -> "CheckpointMetadata":
        """The metadata of a checkpoint's top level (empty for a bare state dict)."""
        if not isinstance(content, Mapping):
            return cls()
        names = content.get("class_names")
        preprocessing = content.get("preprocessing")
        name, args = content.get("model_name"), content.get("model_args")
        if args is None:  # effvid 0.1 kept the model's name and arguments only in the recipe
            config = content.get("config")
            recipe = config.get("model") if isinstance(config, Mapping) else None
            if isinstance(recipe, Mapping):
                name, args = recipe.get("name"), recipe.get("args")
        return cls(
            class_names=[str(n) for n in names] if isinstance(names, list | tuple) else None,
            preprocessing=dict(preprocessing) if isinstance(preprocessing, Mapping) else None,
            model_name=name if isinstance(name, str) else None,
            model_args=dict(args) if isinstance(args, Mapping) else {},
        )


@dataclass(frozen=True)
class Checkpoint:
    """The weights in a checkpoint (prefixes stripped) and its metadata.

    `num_classes` is set for a model folder (`effvid.models.pretrained`): a folder is a whole
    model, so `load_checkpoint` loads it only into the model it names, with its class count."""

    state: dict[str, torch.Tensor]
    metadata: CheckpointMetadata = field(default_factory=CheckpointMetadata)
    source: str = "a state dict"  # the file it was read from, for messages
    num_classes: int | None = None


def read_checkpoint(source: str | Path | Mapping) -> Checkpoint:
    """The flat name -> tensor dict inside a checkpoint file or container, and its metadata.

    `source` may also be a model folder or a `hf-hub:org/name[@revision]` name (see
    `effvid.models.pretrained`)."""
    if isinstance(source, str | Path):
        # Folders build on this module's file reading; imported here to keep the layout one way.
        from effvid.models.pretrained import local_path, read_model_folder

        path = local_path(source)
        if path.is_dir():
            return read_model_folder(path, name=str(source))
    is_file = isinstance(source, str | Path)
    where = str(source) if is_file else "a state dict"
    content = _read_file(Path(source)) if is_file else source
    metadata = CheckpointMetadata.from_content(content)
    while isinstance(content, Mapping):
        container = next(
            (key for key in _CONTAINER_KEYS if isinstance(content.get(key), Mapping)), None
        )
        if container is None:
            break
        content = content[container]
    if not isinstance(content, Mapping):
        raise CheckpointError(f"{where}: expected a state dict, found a {type(content).__name__}")
    state = {}
    for key, value in content.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{where}: entry {key!r} is a {type(value).__name__}, not a tensor: not a state "
                f"dict (top-level keys: {', '.join(map(str, list(content)[:_LISTED_KEYS]))})"
            )
        for prefix in _KEY_PREFIXES:
            key = key.removeprefix(prefix)
        state[key] = value
    return Checkpoint(state, metadata, where)


def _inflate_kernel(kernel: torch.Tensor, depth: int, inflation: Inflation) -> torch.Tensor:
    """(C_out, C_in, kh, kw) -> (C_out, C_in, depth, kh, kw)."""
    if inflation == "replicate":
        return kernel.unsqueeze(2).repeat(1, 1, depth, 1, 1) / depth
    inflated = kernel.new_zeros(*kernel.shape[:2], depth, *kernel.shape[2:])
    inflated[:, :, depth // 2] = kernel
    return inflated


def _temporal_kernel(shape: torch.Size, inflation: Inflation, like: torch.Tensor) -> torch.Tensor:
    """The temporal half (C, 1, kt, 1, 1) of a (2+1)-D depthwise conv: identity or average."""
    depth = shape[2]
    if inflation == "replicate":
        return like.new_full(shape, 1.0 / depth)
    kernel = like.new_zeros(shape)
    kernel[:, :, depth // 2] = 1.0
    return kernel


def inflate_state_dict(
    state: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor], inflation: Inflation
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Inflate the 2-D conv kernels of `state` to the 3-D shapes of `target` (a model's state).

    Returns the new state and the inflated keys. Keys that need no inflation pass unchanged.
    """
    if inflation not in ("centre", "replicate"):
        raise InputError(f"inflation must be 'centre' or 'replicate', got {inflation!r}")
    state = dict(state)
    inflated = []
    for key, reference in target.items():
        kernel = state.get(key)
        if kernel is not None and kernel.ndim == 4 and reference.ndim == 5:
            if kernel.shape == reference.shape[:2] + reference.shape[3:]:
                state[key] = _inflate_kernel(kernel, reference.shape[2], inflation)
                inflated.append(key)
        elif key.endswith(".spatial.weight") and key not in state:
            module = key.removesuffix(".spatial.weight")
            kernel = state.get(f"{module}.weight")
            temporal_key = f"{module}.temporal.weight"
            if kernel is not None and kernel.ndim == 4 and temporal_key in target:
                state[key] = kernel.unsqueeze(2)
                state[temporal_key] = _temporal_kernel(
                    target[temporal_key].shape, inflation, kernel
                )
                del state[f"{module}.weight"]
                inflated.append(key)
    return state, inflated


def _classifier_prefix(model: nn.Module) -> str | None:
    return model.classifier_path if isinstance(model, ClassifierModel) else None


def _adapter(model: nn.Module) -> CheckpointAdapter:
    return model.checkpoint_adapter if isinstance(model, ClassifierModel) else CheckpointAdapter()


def _drop_other_classifier(
    state: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor], prefix: str | None
) -> str | None:
    """Say why the model keeps its own classifier, if it does: the checkpoint has none (a
    backbone) or one with another class count (which is then removed from `state`)."""
    keys = [key for key in target if prefix is not None and key.startswith(f"{prefix}.")]
    present = [key for key in keys if key in state]
    if not keys or (present and all(state[k].shape == target[k].shape for k in present)):
        return None
    if not present:
        return f"new classifier: the checkpoint has none, so '{prefix}' keeps its initialisation"
    old_classes = state[present[0]].shape[0]
    for key in present:
        del state[key]
    return (
        f"new classifier: the checkpoint has {old_classes} classes and the model "
        f"{target[keys[0]].shape[0]}, so '{prefix}' keeps its fresh initialisation"
    )


def load_checkpoint(
    model: nn.Module,
    source: str | Path | Mapping[str, torch.Tensor] | Checkpoint,
    *,
    strict: bool = True,
    inflation: Inflation | None = None,
) -> LoadReport:
    """Load weights from a file, a state dict or a `Checkpoint` read already into `model`, in
    place, and say what was done.

    - 2-D conv kernels are inflated to the model's 3-D kernels (`inflation`: 'centre' or
      'replicate'; default: the rule of the model's `checkpoint_adapter`), so an image
      Mobile-Former loads into the matching Video Mobile-Former;
    - a classifier with another class count, or none in the checkpoint, is not loaded: the model
      keeps its own (reported);
    - with `strict`, any other missing or unexpected key is an error; a key whose shape differs
      is always an error. Errors name the keys. Nothing is loaded when an error is raised;
    - a model folder is a whole model: with `strict` it loads only into the model it names,
      with its class count (without, e.g. to fine-tune, like a file).
    """
    checkpoint = source if isinstance(source, Checkpoint) else read_checkpoint(source)
    description = checkpoint.source
    if checkpoint.num_classes is not None:
        _check_whole_model(model, checkpoint, strict=strict)
    state = checkpoint.state
    adapter = _adapter(model)
    state, notes = adapter.apply(model, state)
    inflation = inflation or adapter.inflation
    target = model.state_dict()
    state, inflated = inflate_state_dict(state, target, inflation)
    new_classifier = _drop_other_classifier(state, target, _classifier_prefix(model))
    classifier_keys = set(target) - set(state) if new_classifier else set()

    missing = [key for key in target if key not in state and key not in classifier_keys]
    unexpected = [key for key in state if key not in target]
    misshaped = [
        f"{key} (checkpoint {tuple(state[key].shape)}, model {tuple(target[key].shape)})"
        for key in state
        if key in target and state[key].shape != target[key].shape
    ]
    problems = [f"mis-shaped: {_few(misshaped)}"] if misshaped else []
    if strict and missing:
        problems.append(f"missing from the checkpoint: {_few(missing)}")
    if strict and unexpected:
        problems.append(f"not in the model: {_few(unexpected)}")
    if problems:
        name = getattr(model, "model_name", type(model).__name__)
        if len(misshaped) + len(missing) > len(target) // 4:
            problems.append("is it a checkpoint of another architecture or variant?")
        raise CheckpointError(
            f"checkpoint {description} does not fit {name}: " + "; ".join(problems)
        )

    model.load_state_dict({k: v for k, v in state.items() if k in target}, strict=False)
    report = LoadReport(
        source=description,
        loaded=[key for key in state if key in target],
        inflated=inflated,
        missing=missing,
        unexpected=unexpected,
        new_classifier=new_classifier,
        notes=notes,
        class_names=checkpoint.metadata.class_names,
    )
    if new_classifier or missing or unexpected or notes:
        logger.warning("%s", report)
    return report


def _check_whole_model(model: nn.Module, checkpoint: Checkpoint, *, strict: bool) -> None:
    """CheckpointError unless the weights of a model folder have the class count its config
    declares, and (`strict`) `model` is the model the folder holds: the same registered model,
    with the same class count. Not strict (fine-tuning from a folder), the model may be another
    one (an image model's folder into its video counterpart) with another classifier."""
    prefix = _classifier_prefix(model)
    weight = _adapter(model).apply(model, checkpoint.state)[0].get(f"{prefix}.weight")
    if weight is not None and weight.ndim == 2 and weight.shape[0] != checkpoint.num_classes:
        raise CheckpointError(
            f"{checkpoint.source}: config.json says {checkpoint.num_classes} classes and its "
            f"weights have {weight.shape[0]}: the folder was altered; write it again"
        )
    if not strict:
        return
    held = checkpoint.metadata.model_name
    name = getattr(model, "model_name", None)
    if name is not None and name != held:
        raise CheckpointError(
            f"{checkpoint.source} holds a {held} model, not {name}: leave out the model name "
            "(--model), a model folder names its model"
        )
    classes = getattr(model, "num_classes", None)
    if classes is not None and classes != checkpoint.num_classes:
        raise CheckpointError(
            f"{checkpoint.source} holds a model of {checkpoint.num_classes} classes, not "
            f"{classes}: for a new classifier use effvid.create_model(folder, pretrained=True, "
            "num_classes=N)"
        )


def _checkpoint_classes(model: nn.Module, checkpoint: Checkpoint) -> int | None:
    """How many classes the checkpoint's classifier has (from its class names or its weights)."""
    if checkpoint.num_classes is not None:
        return checkpoint.num_classes
    if checkpoint.metadata.class_names:
        return len(checkpoint.metadata.class_names)
    prefix = _classifier_prefix(model)
    state = _adapter(model).apply(model, checkpoint.state)[0]
    weight = state.get(f"{prefix}.weight")
    return None if weight is None or weight.ndim != 2 else weight.shape[0]


def load_model(
    name: str | None, source: str | Path | Mapping | Checkpoint, **overrides
) -> tuple[ClassifierModel, LoadReport]:
    """Build the registered model `name` with as many classes as the checkpoint's classifier and
    load the checkpoint strictly into it. `name` None: the model an effvid checkpoint names. A
    checkpoint of an effvid run of `name` also gives the constructor arguments it was trained
    with (`model.args`); `overrides` take precedence. `source` may be a model folder or a
    `hf-hub:` name (`effvid.models.pretrained`). Returns the model (in eval mode, with its
    `model_name`, and the checkpoint's `class_names` and `preprocessing`, None where it has
    none) and the report, which has them too."""
    from effvid.models.registry import create_model

    checkpoint = source if isinstance(source, Checkpoint) else read_checkpoint(source)
    metadata = checkpoint.metadata
    if name is None:
        name = metadata.model_name
        if name is None:
            raise CheckpointError(
                f"{checkpoint.source} does not name its model (only effvid training checkpoints "
                "and model folders do): give the registered model name (--model)"
            )
    trained_args = metadata.model_args if metadata.model_name == name else {}
    model = create_model(name, **{**trained_args, **overrides})
    classes = _checkpoint_classes(model, checkpoint)
    if classes is not None and classes != model.num_classes:
        model.reset_classifier(classes)
    report = load_checkpoint(model, checkpoint)
    report.class_names = metadata.class_names
    report.preprocessing = metadata.preprocessing
    model.class_names, model.preprocessing = metadata.class_names, metadata.preprocessing
    return model.eval(), report


def load_video_model(
    name: str | None, source: str | Path | Mapping | Checkpoint, **overrides
) -> tuple[ClassifierModel, LoadReport]:
    """`load_model` for what runs the model on video clips (B, 3, T, H, W): an image model
    (its card is not `is_video`) is refused with `ImageModelError`, which says what to do."""
    from effvid.models.registry import get_model_card, require_video_model

    model, report = load_model(name, source, **overrides)
    require_video_model(get_model_card(model.model_name), report.source)
    return model, report
