"""What an exported model carries besides its graph: the model card, the class names in label
order and the preprocessing of its input, as JSON strings under `effvid.*` keys. Every runtime's
file stores this dict of strings in its own metadata slot; this module writes and reads it."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pydantic

from effvid.data.preprocessing import SAMPLINGS, Preprocessing
from effvid.errors import ModelFileError
from effvid.models import ModelCard
from effvid.version import __version__


@dataclass(frozen=True)
class ModelInfo:
    """What a runnable model says about itself: card, class names, preprocessing."""

    card: ModelCard
    class_names: list[str]
    preprocessing: Preprocessing

    def class_name(self, index: int) -> str:
        """The name of class `index`, or the index itself when the model carries no names."""
        return self.class_names[index] if index < len(self.class_names) else str(index)


def card_metadata(
    card: ModelCard,
    input_shape: Sequence[int],
    class_names: Sequence[str] = (),
    preprocessing: Preprocessing | None = None,
) -> dict[str, str]:
    """The metadata an exported file carries: JSON strings keyed `effvid.*`: the model card (with
    the exported `input_shape`), the class names and the preprocessing of its input."""
    card_fields = asdict(card) | {"input_shape": list(input_shape)}
    preprocessing = preprocessing or Preprocessing.from_card(card)
    return {
        "effvid.version": __version__,
        "effvid.card": json.dumps(card_fields),
        "effvid.class_names": json.dumps(list(class_names)),
        "effvid.preprocessing": json.dumps(preprocessing.as_dict()),
    }


def parse_metadata(metadata: Mapping[str, str], source: str | Path) -> ModelInfo:
    """The ModelInfo of an exported file's metadata; ModelFileError, naming `source`, when the
    file was not exported by effvid or carries malformed metadata."""
    if "effvid.card" not in metadata:
        raise ModelFileError(
            f"{source} carries no effvid metadata (effvid.card): export it with `effvid export`"
        )
    try:
        card_fields = json.loads(metadata["effvid.card"])
        card_fields.pop("input_shape", None)
        card_fields["mean"], card_fields["std"] = (
            tuple(card_fields["mean"]),
            tuple(card_fields["std"]),
        )
        card = ModelCard(**card_fields)
        class_names = json.loads(metadata.get("effvid.class_names", "[]"))
        if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
            raise ValueError("effvid.class_names is not a list of strings")
        stored = metadata.get("effvid.preprocessing")
        preprocessing = _checked_preprocessing(json.loads(stored) if stored else None, card)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        reason = _reason(error)
        raise ModelFileError(
            f"{source} carries malformed effvid metadata ({type(error).__name__}: {reason})"
        ) from None
    return ModelInfo(card, class_names, preprocessing)


def _reason(error: Exception) -> str:
    if isinstance(error, pydantic.ValidationError):
        first = error.errors()[0]
        return f"preprocessing {'.'.join(map(str, first['loc']))}: {first['msg']}"
    return str(error).splitlines()[0] if str(error) else "no detail"


_PREPROCESSING = pydantic.create_model(
    "Preprocessing",
    __config__=pydantic.ConfigDict(strict=True, extra="ignore"),
    **{field.name: (field.type, field.default) for field in fields(Preprocessing)},
)


def _checked_preprocessing(stored: Any, card: ModelCard) -> Preprocessing:
    """The stored preprocessing, its every field of the declared type and in range."""
    if stored is None:
        return Preprocessing.from_card(card)
    if not isinstance(stored, dict):
        raise ValueError("effvid.preprocessing is not an object")
    stored = {k: tuple(v) if k in ("mean", "std") and isinstance(v, list) else v
              for k, v in stored.items()}  # fmt: skip
    preprocessing = Preprocessing(**dict(_PREPROCESSING.model_validate(stored)))
    sizes = ("num_frames", "sampling_rate", "crop_size", "short_side")
    for name in sizes:
        if getattr(preprocessing, name) < 1:
            raise ValueError(f"preprocessing {name} must be >= 1")
    if preprocessing.sampling not in SAMPLINGS or min(preprocessing.std) <= 0:
        raise ValueError("preprocessing sampling or std out of range")
    return preprocessing


def check_against_graph(
    info: ModelInfo, runner: Any, source: str | Path, *, frames_axis: bool = False
) -> None:
    """ModelFileError when the metadata does not fit the graph `runner` runs: a class-name
    count other than the logits', or an input of another size than the preprocessing's crop
    (and, for a clip model, of another clip length). `frames_axis`: a streaming step, whose
    input holds a chunk of frames, not a clip."""
    classes = runner.output_shapes[0][-1]
    if info.class_names and classes is not None and len(info.class_names) != classes:
        raise ModelFileError(
            f"{source} names {len(info.class_names)} classes for {classes} logits: its "
            "metadata does not belong to its graph (export it again)"
        )
    shape = runner.input_shapes[0]
    size = info.preprocessing.crop_size
    if shape[-1] is not None and shape[-2:] != [size, size]:
        raise ModelFileError(
            f"{source} takes {shape[-2]}x{shape[-1]} inputs but its preprocessing crops "
            f"{size}x{size}: export it again"
        )
    frames = info.preprocessing.num_frames
    if len(shape) == 5 and not frames_axis and shape[2] is not None and shape[2] != frames:
        raise ModelFileError(
            f"{source} takes clips of {shape[2]} frames but its preprocessing makes {frames}"
        )
