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
    """Safe YAML that reads 1e-3 as a number (YAML 1.1 wants a dot: 1.0e-3)."""


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
        content = _yaml(path.read_text()) or {}
    except OSError as error:
        raise ConfigError(f"cannot read recipe {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"recipe {path} is not valid YAML: {error}") from None
    if not isinstance(content, dict):
        raise ConfigError(f"recipe {path} must be a mapping of sections")
    base = content.pop("base", None)
    if base is None:
        return content
    parent = _read_recipe((path.parent / base).resolve(), (*seen, path))
    return _deep_update(parent, content)


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
        raise ConfigError("the recipe is nested too deeply to be a recipe") from None
    return _validate(config)


def _first_error(error: ValidationError) -> str:
    """A pydantic error as one line: 'train.lr' must be greater than 0 (got 0)."""
    detail = error.errors()[0]
    if detail["type"] == "value_error":  # a cross-key rule, whose message names the keys
        return detail["msg"].removeprefix("Value error, ")
    where = ".".join(str(part) for part in detail["loc"])
    rule = detail["msg"].replace("Input should be", "must be").replace("List should", "must")
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
    """The model exists and accepts its arguments (built on the meta device: no weights)."""
    import torch

    from effvid.models import create_model

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
    """The resolved recipe an effvid training checkpoint was trained with."""
    from effvid.train.training_checkpoint import read_training_checkpoint

    recipe = read_training_checkpoint(path).config
    if not recipe:
        raise ConfigError(f"{path} holds no recipe: give the one it was trained with (--config)")
    return recipe


def dump_config(config: Mapping) -> str:
    """The configuration as YAML text (what a run folder records)."""
    return yaml.safe_dump(dict(config), sort_keys=False)
