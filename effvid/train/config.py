"""Training recipes: YAML files over documented defaults, with `key.sub=value` overrides.

A recipe has five sections: `model`, `data`, `train`, `eval` and `output`; every key, its type,
range and default are declared once, in `recipe_schema.Recipe`. A recipe file may start from
another with `base: other.yaml` (resolved beside it). The recipes shipped with effvid
(`effvid/configs/`, also `configs/` in a source checkout) can be named without their path:
`--config vmf_xs_k400`. The whole recipe is checked when it is loaded: an unknown key is refused
with the closest valid key named, a value of the wrong type or out of range with the key, the
rule and the value, and the model must exist and accept its `model.args`.
"""

import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from effvid.errors import EffvidError
from effvid.train.recipe_schema import Recipe

# Every key with its default (the schema, `recipe_schema.Recipe`, documents each one).
DEFAULTS: dict[str, dict[str, Any]] = Recipe().model_dump(mode="json")


class _RecipeLoader(yaml.SafeLoader):
    """Safe YAML that reads 1e-3 as a number (YAML 1.1 wants a dot: 1.0e-3), and refuses what
    plain YAML lets pass: a key given twice in one mapping (YAML would keep the last silently)
    and an alias inside the node it refers to (a structure that contains itself)."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._open_anchors: set[str] = set()  # anchors of the nodes being composed

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) and event.anchor in self._open_anchors:
            raise yaml.composer.ComposerError(
                None, None, f"alias *{event.anchor} refers to a node that contains it",
                event.start_mark,
            )  # fmt: skip
        anchor = None if isinstance(event, yaml.AliasEvent) else event.anchor
        if anchor is not None:
            self._open_anchors.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open_anchors.discard(anchor)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, str | int | float | bool) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"key {key!r} is given twice (first on line {seen[key] + 1})",
                        key_node.start_mark,
                    )  # fmt: skip
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$|^[-+]?\d[\d_]*\.\d*$|^[-+]?\.\d+$"),
    list("-+0123456789."),
)


def _yaml(text: str):
    return yaml.load(text, Loader=_RecipeLoader)


class ConfigError(EffvidError, ValueError):
    """A recipe or override that cannot be used; the message names the key."""


FREE_FORM = ("model.args",)  # mappings whose keys the model checks, not the recipe


def _merge(base: dict, update: Mapping, path: str = "", *, free_form: bool = False) -> dict:
    """`update` over `base`, mappings merged key by key; outside free-form mappings, keys
    that `base` lacks are errors."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in merged and not free_form:
            close = difflib.get_close_matches(key, list(merged), n=1)
            hint = f" (did you mean '{path}{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown key '{where}'{hint}")
        if isinstance(merged.get(key), dict) and isinstance(value, Mapping):
            inner = free_form or where in FREE_FORM
            merged[key] = _merge(merged[key], value, f"{where}.", free_form=inner)
        elif isinstance(merged.get(key), dict) and not free_form:
            raise ConfigError(f"'{where}' must be a mapping, got {value!r}")
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path in seen:
        raise ConfigError(f"recipe {path} includes itself through 'base'")
    try:
        content = _yaml(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read recipe {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"recipe {path} is not text (UTF-8)") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"recipe {path} is not valid YAML: {_one_line(error)}") from None
    if content is None:
        raise ConfigError(f"recipe {path} is empty: give at least one section (see configs/)")
    if not isinstance(content, dict):
        raise ConfigError(f"recipe {path} must be a mapping of sections")
    base = content.pop("base", None)
    if base is None:
        return content
    parent = _read_recipe((path.parent / base).resolve(), (*seen, path))
    return _deep_update(parent, content)


def _one_line(error: yaml.YAMLError) -> str:
    """A YAML error on one line, with its line number: 'line 3, column 5: found ...'."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + " ".join(problem.split())


def _deep_update(base: dict, update: Mapping) -> dict:
    result = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _deep_update(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.lr=3e-4' -> (['train', 'lr'], 0.0003); the value is read as YAML."""
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    try:
        parsed = _yaml(value) if value else None
    except yaml.YAMLError:
        parsed = value
    return key.strip().split("."), parsed


def _nest(keys: list[str], value: Any) -> dict:
    for key in reversed(keys):
        value = {key: value}
    return value


RECIPES_DIR = Path(__file__).resolve().parent.parent / "configs"


def recipe_path(recipe: str | Path) -> Path:
    """A recipe file, or the shipped recipe of that name (`demo`, `vmf_xs_k400`, ...)."""
    path = Path(recipe)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path.resolve()
    shipped = RECIPES_DIR / f"{recipe}.yaml"
    if shipped.exists():
        return shipped
    names = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))
    raise ConfigError(f"no recipe file {recipe!r}, and no shipped recipe of that name ({names})")


def load_config(
    recipe: str | Path | Mapping | None = None, overrides: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """The full configuration: `DEFAULTS`, then the recipe (file, shipped name or mapping),
    then overrides."""
    config = copy.deepcopy(DEFAULTS)
    try:
        if recipe is not None:
            is_file = isinstance(recipe, str | Path)
            content = _read_recipe(recipe_path(recipe)) if is_file else recipe
            config = _merge(config, content)
        for text in overrides:
            config = _merge(config, _nest(*parse_override(text)))
    except RecursionError:
        which = f"recipe {recipe}" if isinstance(recipe, str | Path) else "the recipe"
        raise ConfigError(f"{which} is nested too deeply to be a recipe") from None
    return _validate(config)


def _first_error(error: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line: 'train.lr' must be greater than 0 (got 0)."""
    detail = error.errors()[0]
    if detail["type"] == "value_error":  # a cross-key rule, whose message names the keys
        return detail["msg"].removeprefix("Value error, ")
    where = prefix + "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in detail["loc"]
    ).removeprefix(".")
    rule = detail["msg"].replace("Input should be", "must be").replace("List should", "must")
    if detail["type"] == "sequence_str":  # a declared sequence given as text
        rule = "must be a list, not text"
    if detail["type"] == "extra_forbidden":
        rule = "is not a recipe key"
    return f"'{where}' {rule} (got {detail['input']!r})"


def _validate(config: Mapping) -> dict[str, dict[str, Any]]:
    try:
        validated = Recipe.model_validate(config).model_dump(mode="json")
    except ValidationError as error:
        raise ConfigError(_first_error(error)) from None
    _check_model(validated["model"])
    return validated


def _check_model(model: Mapping) -> None:
    """The model exists, its arguments have the types and ranges its constructor declares
    (`argument_schema`), and it builds with them (on the meta device: no weights)."""
    import torch

    from effvid.models import create_model
    from effvid.models.registry import argument_schema

    if "num_classes" in model["args"]:
        raise ConfigError(
            "'model.args.num_classes' is not set by a recipe: the classes of the training data "
            "(data.classes, or the labels found) give the class count"
        )
    try:
        schema = argument_schema(model["name"])
        if schema is not None:
            schema.model_validate(model["args"])
    except EffvidError as error:
        raise ConfigError(f"model: {error}") from None
    except ValidationError as error:
        raise ConfigError(_first_error(error, "model.args.")) from None
    try:
        with torch.device("meta"):
            create_model(model["name"], **model["args"])
    except EffvidError as error:
        raise ConfigError(f"model: {error}") from None
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"model.args {model['args']} do not build {model['name']}: {error}"
        ) from None


def recipe_of_checkpoint(path: str | Path) -> dict:
    """The resolved recipe an effvid training checkpoint, or a model folder made from a run
    (its config.json's "recipe"; a `hf-hub:` name too), was trained with."""
    from effvid.models.pretrained import local_path, read_folder_config
    from effvid.train.training_checkpoint import read_training_checkpoint

    local = local_path(path)
    if local.is_dir():
        recipe = read_folder_config(local).recipe
    else:
        recipe = read_training_checkpoint(local).config
    if not recipe:
        raise ConfigError(f"{path} holds no recipe: give the one it was trained with (--config)")
    return recipe


def dump_config(config: Mapping) -> str:
    """The configuration as YAML text (what a run folder records)."""
    return yaml.safe_dump(dict(config), sort_keys=False)
