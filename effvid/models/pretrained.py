"""Model folders: a trained model as three files that any effvid command, `create_model` and the
Hugging Face Hub take whole.

    my_model/
      model.safetensors   the model's state dict (safetensors: nothing is unpickled)
      config.json         what rebuilds it: library "effvid", format_version, effvid_version,
                          model_name, model_args (constructor overrides), num_classes,
                          class_names (in label order, or null), preprocessing (or null),
                          recipe (the training recipe, when the folder comes from a run)
      README.md           a Hugging Face model card (YAML front matter: library_name: effvid)

    model.save_pretrained("my_model", class_names=names)          # write one
    model = effvid.create_model("my_model", pretrained=True)      # the model, trained weights,
    model.class_names, model.preprocessing                        # its labels and input
    effvid predict VIDEO --checkpoint my_model                    # every --checkpoint takes one

A folder is written whole or not at all (to a temporary folder beside it, read back, then
renamed into place). An existing folder that is not an effvid model folder is never replaced, an
effvid one only with `overwrite`. Reading is as strict as for a checkpoint file: a folder without
`config.json` or its weights, a `config.json` that is malformed or of a newer format, is one
line naming the file; a folder is a whole model, so loading it into another model or another
class count is refused (`load_checkpoint`). Names `hf-hub:org/name[@revision]` resolve to a
folder in the Hugging Face cache (`effvid.models.hub`).
"""

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from effvid.models.weights import Checkpoint, CheckpointError, CheckpointMetadata, read_checkpoint
from effvid.version import __version__

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
FOLDER_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)
LIBRARY = "effvid"
FORMAT_VERSION = 1  # raised when a reader of the previous version would misread a folder


@dataclass(frozen=True)
class FolderConfig:
    """The content of a model folder's `config.json` (see the module docstring)."""

    model_name: str
    num_classes: int
    model_args: dict = field(default_factory=dict)
    class_names: list[str] | None = None
    preprocessing: dict | None = None
    recipe: dict | None = None
    effvid_version: str = __version__

    def metadata(self) -> CheckpointMetadata:
        return CheckpointMetadata(
            class_names=self.class_names,
            preprocessing=self.preprocessing,
            model_name=self.model_name,
            model_args=dict(self.model_args),
        )

    def as_json(self) -> dict:
        content = {
            "library": LIBRARY,
            "format_version": FORMAT_VERSION,
            "effvid_version": self.effvid_version,
            "model_name": self.model_name,
            "model_args": self.model_args,
            "num_classes": self.num_classes,
            "class_names": self.class_names,
            "preprocessing": self.preprocessing,
        }
        return content if self.recipe is None else {**content, "recipe": self.recipe}

    @classmethod
    def from_json(cls, content: object, path: Path) -> "FolderConfig":
        """The config of `path` (its parsed JSON); CheckpointError naming `path` if it is not
        an effvid model folder's config, is of a newer format, or has a field of a wrong type."""

        def bad(why: str) -> CheckpointError:
            return CheckpointError(f"{path} is not a valid effvid model config: {why}")

        if not isinstance(content, dict):
            raise bad(f"a JSON {type(content).__name__}, not an object")
        if content.get("library") != LIBRARY:
            raise bad(f"'library' is {content.get('library')!r}, not {LIBRARY!r}")
        version = content.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise bad(f"'format_version' must be an integer >= 1, got {version!r}")
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has format_version {version}, newer than this effvid reads "
                f"({FORMAT_VERSION}): upgrade effvid (pip install -U effvid)"
            )
        name, classes = content.get("model_name"), content.get("num_classes")
        names, preprocessing = content.get("class_names"), content.get("preprocessing")
        args, recipe = content.get("model_args", {}), content.get("recipe")
        if not isinstance(name, str) or not name:
            raise bad(f"'model_name' must be a registered model's name, got {name!r}")
        if not isinstance(classes, int) or isinstance(classes, bool) or classes < 0:
            raise bad(f"'num_classes' must be an integer >= 0, got {classes!r}")
        if not isinstance(args, dict):
            raise bad(f"'model_args' must be an object, got {args!r}")
        if names is not None:
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise bad("'class_names' must be a list of strings or null")
            if len(names) != classes:
                raise bad(f"{len(names)} class_names for num_classes {classes}")
        if preprocessing is not None and not isinstance(preprocessing, dict):
            raise bad(f"'preprocessing' must be an object or null, got {preprocessing!r}")
        if recipe is not None and not isinstance(recipe, dict):
            raise bad(f"'recipe' must be an object or null, got {recipe!r}")
        return cls(
            model_name=name,
            num_classes=classes,
            model_args=args,
            class_names=names,
            preprocessing=preprocessing,
            recipe=recipe,
            effvid_version=str(content.get("effvid_version", "unknown")),
        )


# --- where a folder is -------------------------------------------------------------------------


def is_folder_reference(source: object) -> bool:
    """Whether `create_model` should read `source` as a model folder or a Hub name rather than a
    registered model's name: a Path, `hf-hub:...`, or text naming a path (an existing folder, or
    text with a path separator)."""
    from effvid.models.hub import is_hub_reference

    if isinstance(source, os.PathLike) or is_hub_reference(source):
        return True
    return isinstance(source, str) and (os.sep in source or "/" in source or Path(source).is_dir())


def local_path(source: str | os.PathLike) -> Path:
    """`source` as a local path: a `hf-hub:org/name[@revision]` name becomes its folder in the
    Hugging Face cache (downloaded if needed), anything else is the path itself."""
    from effvid.models.hub import download_model_folder, is_hub_reference

    return download_model_folder(str(source)) if is_hub_reference(source) else Path(source)


def weights_file(source: str | os.PathLike) -> Path:
    """The file that holds the weights of `source`: a model folder's `model.safetensors` (a Hub
    name's, in the cache), or the checkpoint or exported file itself (what a provenance hashes)."""
    path = local_path(source)
    return path / WEIGHTS_FILE if path.is_dir() else path


def is_model_folder(path: str | os.PathLike) -> bool:
    """Whether `path` is a folder holding a `config.json` that says effvid wrote it."""
    config = Path(path) / CONFIG_FILE
    try:
        return json.loads(config.read_text()).get("library") == LIBRARY
    except (OSError, ValueError, AttributeError):
        return False


# --- reading -----------------------------------------------------------------------------------


def read_folder_config(folder: str | os.PathLike) -> FolderConfig:
    """The `config.json` of model folder `folder` (a local path); CheckpointError naming the
    file when it is missing, unreadable, malformed or of a newer format."""
    folder = Path(folder)
    config = folder / CONFIG_FILE
    if not folder.is_dir():
        raise CheckpointError(f"no model folder at {folder}")
    if not config.is_file():
        run = [name for name in ("best.pth", "last.pth") if (folder / name).is_file()]
        hint = (
            f"; it looks like a run folder: give {folder / run[0]}, or make a model folder "
            f"with `effvid save-pretrained {folder} OUT`"
            if run
            else ": write one with model.save_pretrained or `effvid save-pretrained`"
        )
        raise CheckpointError(f"{folder} is not an effvid model folder (no {CONFIG_FILE}){hint}")
    try:
        content = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{config} is not valid JSON: {error}") from None
    return FolderConfig.from_json(content, config)


def read_model_folder(folder: str | os.PathLike, *, name: str | None = None) -> Checkpoint:
    """The weights and metadata of model folder `folder` (a local path) as a `Checkpoint` whose
    `num_classes` is the folder's (a folder is a whole model); `name`: how messages call it
    (default: the path)."""
    folder = Path(folder)
    config = read_folder_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"model folder {folder} has no weights: {weights} is missing")
    checkpoint = read_checkpoint(weights)
    return Checkpoint(
        checkpoint.state, config.metadata(), name or str(folder), num_classes=config.num_classes
    )


# --- writing -----------------------------------------------------------------------------------


def card_front_matter(config: FolderConfig, family: str, *, tags: Sequence[str] = ()) -> str:
    """The YAML front matter of a model card: what the Hugging Face Hub reads to file the
    model (library, task, tags)."""
    import yaml

    matter = {
        "library_name": LIBRARY,
        "pipeline_tag": "video-classification" if _is_video(config) else "image-classification",
        "tags": list(dict.fromkeys([LIBRARY, family, config.model_name, *tags])),
    }
    return f"---\n{yaml.safe_dump(matter, sort_keys=False)}---\n"


def _is_video(config: FolderConfig) -> bool:
    from effvid.models.registry import get_model_card

    return get_model_card(config.model_name).is_video


def default_card(config: FolderConfig, reference: str) -> str:
    """A short model card body for a folder saved from Python: the model, its classes, and how
    to use it (`reference`: the folder's path or Hub name)."""
    from effvid.models.registry import get_model_card

    card = get_model_card(config.model_name)
    classes = (
        f"{config.num_classes} classes: {', '.join(config.class_names)}."
        if config.class_names
        else f"{config.num_classes} outputs; this folder has no class names (predictions are "
        "labelled by class index)."
    )
    return (
        f"# {config.model_name}\n\n"
        f"A {card.family} model ({card.name}, {card.params / 1e6:.2f} M parameters) saved with "
        f"effvid {config.effvid_version}. {classes}\n\n"
        f"{usage_section(reference, config.model_name)}"
    )


def usage_section(reference: str, model_name: str) -> str:
    """How to use the folder at `reference` (its path or `hf-hub:` name) holding registered
    model `model_name`, as markdown. A video model runs in effvid's commands; an image model
    (input (B, 3, H, W)) does not: its card shows it in Python and inflated into the VMF built
    on it, if one is."""
    from effvid.models.registry import get_model_card, list_models

    python = (
        "```python\nimport effvid\n\n"
        f'model = effvid.create_model("{reference}", pretrained=True)\n'
        "model.class_names  # the labels, in the order of the logits\n"
    )
    if get_model_card(model_name).is_video:
        return (
            "## Use\n\n"
            "```bash\npip install effvid\n"
            f"effvid predict VIDEO --checkpoint {reference}\n```\n\n"
            f"{python}```\n"
        )
    use = (
        "## Use\n\n"
        f"{model_name} is an image model: it takes images (B, 3, H, W), and effvid's video "
        "commands (predict, stream, eval, serve) do not run it. In Python:\n\n"
        f"{python}"
    )
    vmfs = [
        name
        for name in list_models()
        if get_model_card(name).extras.get("image_base") == model_name
    ]
    if not vmfs:
        return f"{use}```\n"
    return (
        f"{use}\n"
        f"# on video: its weights inflated into {vmfs[0]}, the VMF built on it, to fine-tune\n"
        f'video_model = effvid.create_model("{vmfs[0]}")\n'
        "effvid.load_checkpoint(video_model, model.state_dict())\n```\n"
    )


def save_model_folder(
    model: nn.Module,
    directory: str | os.PathLike,
    *,
    class_names: Sequence[str] | None = None,
    preprocessing: Mapping | None = None,
    card: str | None = None,
    recipe: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` (a registered effvid model: it has `model_name`) as the model folder
    `directory` (see the module docstring) and return it.

    `class_names` (default: the model's `class_names`, if it has them) must number
    `model.num_classes`; `preprocessing`: the input it was trained on (default: the model's);
    `card`: the model card's markdown body (default: a short one), below the front matter
    effvid writes; `recipe`: the training recipe, kept in `config.json`."""
    name = getattr(model, "model_name", None)
    if not isinstance(name, str):
        raise CheckpointError(
            "save_pretrained needs a registered effvid model (effvid.create_model sets its "
            "model_name)"
        )
    from effvid.models.registry import get_model_card

    family = get_model_card(name).family
    names = class_names if class_names is not None else getattr(model, "class_names", None)
    if preprocessing is None:
        preprocessing = getattr(model, "preprocessing", None)
    num_classes = getattr(model, "num_classes", 0)
    if names is not None and len(names) != num_classes:
        raise CheckpointError(
            f"{len(names)} class names for a model of {num_classes} classes: give one name per "
            "output, in label order"
        )
    config = FolderConfig(
        model_name=name,
        num_classes=num_classes,
        model_args=dict(getattr(model, "model_args", {})),
        class_names=[str(n) for n in names] if names is not None else None,
        preprocessing=dict(preprocessing) if preprocessing is not None else None,
        recipe=dict(recipe) if recipe is not None else None,
    )
    try:
        config_text = json.dumps(config.as_json(), indent=2, ensure_ascii=False) + "\n"
    except TypeError as error:
        raise CheckpointError(f"the model's config cannot be written as JSON: {error}") from None
    body = card if card is not None else default_card(config, str(directory))
    files = {
        CONFIG_FILE: config_text.encode(),
        CARD_FILE: (card_front_matter(config, family) + "\n" + body).encode(),
    }
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    return _write_folder(Path(directory), state, files, overwrite=overwrite)


def _check_replaceable(directory: Path, overwrite: bool) -> None:
    """Refuse to replace what is at `directory` unless it is absent, an empty folder, or an
    effvid model folder and `overwrite` is given."""
    if not directory.exists() and not directory.is_symlink():
        return
    if directory.is_dir() and not directory.is_symlink() and not any(directory.iterdir()):
        return
    if not is_model_folder(directory) or directory.is_symlink():
        raise CheckpointError(
            f"{directory} exists and is not an effvid model folder: effvid never replaces it; "
            "give another output folder"
        )
    if not overwrite:
        raise CheckpointError(
            f"{directory} already holds an effvid model folder: give --overwrite "
            "(overwrite=True) to replace it, or another output folder"
        )


def _write_folder(
    directory: Path, state: dict[str, torch.Tensor], files: Mapping[str, bytes], *, overwrite: bool
) -> Path:
    """Write the weights and `files` into a temporary folder beside `directory`, check that it
    reads back, then rename it into place (an old model folder is moved aside first and
    removed last, so that a crash leaves the old folder or the new one under the name)."""
    _check_replaceable(directory, overwrite)
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = directory.with_name(f".{directory.name}.partial-{os.getpid()}")
    old = directory.with_name(f".{directory.name}.replaced-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    try:
        save_file(state, temporary / WEIGHTS_FILE, metadata={"format": "pt"})
        for file_name, content in files.items():
            (temporary / file_name).write_bytes(content)
        for file_name in FOLDER_FILES:
            _fsync(temporary / file_name)
        read_model_folder(temporary)  # whole and readable, or we stop here
        if directory.is_dir() and any(directory.iterdir()):
            os.replace(directory, old)
        os.replace(temporary, directory)
        _fsync(directory.parent)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return directory


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- building ----------------------------------------------------------------------------------


def create_from_folder(
    source: str | os.PathLike, *, pretrained: bool, num_classes: int | None = None, **overrides
) -> nn.Module:
    """The model a folder or `hf-hub:` name holds (see `effvid.create_model`): with
    `pretrained`, its trained weights, in eval mode; without, fresh weights. `class_names` and
    `preprocessing` are the folder's; a `num_classes` other than the folder's gives a fresh
    classifier (and no class names): the start of a fine-tuning."""
    from effvid.models.registry import create_model
    from effvid.models.weights import load_model

    if pretrained:
        model, _ = load_model(None, source, **overrides)
    else:
        config = read_folder_config(local_path(source))
        args: dict[str, Any] = {**config.model_args, **overrides}
        model = create_model(config.model_name, num_classes=config.num_classes, **args)
        model.class_names, model.preprocessing = config.class_names, config.preprocessing
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    return model
