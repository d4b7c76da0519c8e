"""What an exported model carries besides its graph: the model card, the class names in label
order and the preprocessing of its input, as JSON strings under `effvid.*` keys. Every runtime's
file stores this dict of strings in its own metadata slot; this module writes and reads it."""

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from effvid.data.preprocessing import Preprocessing
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
        class_names = [str(name) for name in json.loads(metadata.get("effvid.class_names", "[]"))]
        stored = metadata.get("effvid.preprocessing")
        preprocessing = Preprocessing.resolve(json.loads(stored) if stored else None, card)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise ModelFileError(
            f"{source} carries malformed effvid metadata ({type(error).__name__}: {error})"
        ) from None
    return ModelInfo(card, class_names, preprocessing)
