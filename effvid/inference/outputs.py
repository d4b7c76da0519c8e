"""What every output of `effvid predict`, `effvid features` and `effvid stream` records about what
produced it, and the rule for writing into an output that already exists.

A provenance is a flat JSON object, written into the output itself (a prediction file's first
line, a feature store's `store.json`, an annotated video's metadata):

    effvid            what the output is: "predictions", "features" or "stream"
    model, model_args, class_names, preprocessing      the model, its labels in order, its input
    weights, weights_sha256, runtime                   the file that ran (checkpoint or export;
                                                       a model folder's model.safetensors)
    clips, window, stride, top_k, layer, per_clip...   the options that shape the records
    effvid_version

An existing output is continued only when effvid wrote it (it carries a provenance: effvid
recognises its own files by what they say, not by their names) and when its provenance equals
the run's in every field that changes the records: everything but `weights` (the file's name:
the digest says which weights ran) and `effvid_version`. Anything else is refused, naming the
first difference and the way out; a file effvid did not write is never appended to or replaced.
"""

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from effvid.errors import InputError
from effvid.inference.metadata import ModelInfo
from effvid.version import __version__

# Recorded, never compared: a checkpoint moved or renamed, or a newer effvid, makes the same
# records.
NOT_COMPARED = ("weights", "effvid_version")


class ForeignOutputError(InputError):
    """An output path names a file (or folder) that effvid did not write."""


class OutputMismatchError(InputError):
    """An existing output was written by another model, weights or options than the run's."""


class CorruptOutputError(InputError):
    """A line in the middle of an output file is not what effvid wrote there."""


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_provenance(weights: str | Path, info: ModelInfo, runtime: str) -> dict:
    """The fields of a provenance that say which model ran: its name and constructor arguments
    (those a training checkpoint records; an exported file's are in its graph), class names in
    label order, preprocessing, the weights' file and SHA-256, and the runtime."""
    from effvid.models.pretrained import weights_file

    exported = runtime != "eager"
    return {
        "model": info.card.name,
        "model_args": {} if exported else checkpoint_model_args(weights, info.card.name),
        "class_names": list(info.class_names),
        "preprocessing": info.preprocessing.as_dict(),
        "weights": str(weights),
        "weights_sha256": file_sha256(weights_file(weights)),
        "runtime": runtime,
    }


def checkpoint_model_args(checkpoint: str | Path, model: str) -> dict:
    """The constructor arguments the model in `checkpoint` was built with: those an effvid
    training checkpoint records, when it names `model` (what `load_model` builds it with)."""
    from effvid.models.weights import read_checkpoint

    metadata = read_checkpoint(checkpoint).metadata
    return dict(metadata.model_args) if metadata.model_name == model else {}


def provenance(kind: str, model: Mapping[str, Any], options: Mapping[str, Any]) -> dict:
    """A whole provenance: what the output is, the model (`model_provenance`), the options."""
    return {"effvid": kind, **model, **options, "effvid_version": __version__}


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "none"
    if key == "weights_sha256" and isinstance(value, str):
        return value[:12]
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else f"{text[:57]}..."


def first_difference(written: Mapping[str, Any], given: Mapping[str, Any]) -> str | None:
    """The first field (in the run's order) whose value would change the records, as
    "KEY VALUE, not VALUE (now)"; None when the two provenances make the same records."""
    for key in [*given, *(key for key in written if key not in given)]:
        if key in NOT_COMPARED or written.get(key) == given.get(key):
            continue
        return f"{key} {_shown(key, written.get(key))}, not {_shown(key, given.get(key))}"
    return None


def check_continuation(
    path: Path, written: Mapping[str, Any], given: Mapping[str, Any], way_out: str
) -> None:
    """Refuse to continue `path` (whose provenance is `written`) with a run of provenance
    `given` when they differ in anything that changes the records."""
    if written.get("effvid") != given["effvid"]:
        what = written.get("effvid")
        held = f"{what} of effvid" if isinstance(what, str) else "an effvid output of another kind"
        raise OutputMismatchError(f"{path} holds {held}, not {given['effvid']}: {way_out}")
    difference = first_difference(written, given)
    if difference is not None:
        raise OutputMismatchError(
            f"{path} holds {given['effvid']} made with {difference} (this run): {way_out}"
        )


def legacy_error(path: Path, way_out: str) -> OutputMismatchError:
    """An output that an earlier effvid wrote, before outputs recorded their provenance."""
    return OutputMismatchError(
        f"{path} was written by an earlier effvid, which did not record what made it: {way_out}"
    )


def foreign_error(path: Path, what: str, command: str) -> ForeignOutputError:
    return ForeignOutputError(
        f"{path} exists and is not {what} written by `effvid {command}`: effvid never appends "
        "to or replaces a file it did not write; give another --output"
    )


def corrupt_line(path: Path, number: int, what: str) -> CorruptOutputError:
    """The error for line `number` of `path`, which is `what` (not what effvid wrote there)."""
    return CorruptOutputError(
        f"{path}:{number}: {what}: remove or repair that line, or write to another output"
    )


def json_lines(path: Path, text_lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of `text_lines` ((number, text) pairs of
    `path`); CorruptOutputError naming `path:line` for a line that is not a JSON object."""
    for number, line in text_lines:
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as error:
            raise corrupt_line(path, number, f"not a line effvid wrote ({error})") from None
        if not isinstance(value, dict):
            kind = type(value).__name__
            raise corrupt_line(path, number, f"not a line effvid wrote (a JSON {kind})")
        yield number, value
