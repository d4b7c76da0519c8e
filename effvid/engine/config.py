"""Training recipes: YAML files over documented defaults, with `key.sub=value` overrides.

A recipe has five sections: `model`, `data`, `train`, `eval` and `output` (see `DEFAULTS` for
every key and its meaning). A recipe file may start from another with `base: other.yaml`
(resolved beside it). The recipes shipped with effvid (`effvid/configs/`, also `configs/` in a
source checkout) can be named without their path: `--config vmf_xs_k400`. Unknown keys are
refused with the closest valid key named, so a typo never silently falls back to a default.
"""

import copy
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from effvid.errors import EffvidError

DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {
        "name": "vmf_xxs",  # a registered model (effvid models)
        "args": {},  # constructor overrides, e.g. {drop_path_rate: 0.1}
        "checkpoint": None,  # weights to start from (fine-tuning); the head is replaced if needed
    },
    "data": {
        # list | kinetics | ssv2 | ucf101 | hmdb51 | folder | demo (the built-in dataset)
        "format": "demo",
        "train": None,  # annotation file (or folder tree) of the training split
        "val": None,  # annotation file of the evaluation split
        "test": None,  # annotation file of a held-out test split (effvid eval --split test)
        "root": None,  # folder the annotation's video paths are relative to
        "classes": None,  # classes file, where the format needs one
        "split": 1,  # UCF101 / HMDB51 split number
        "num_frames": 8,
        "sampling": "dense",  # dense (num_frames x sampling_rate) | segment (TSN)
        "sampling_rate": 8,
        "crop_size": 160,
        "short_side": 160,  # evaluation resize of the short side
        "scale_jitter": None,  # training short-side range [min, max]; None: random-resized-crop
        "crop_area": [0.08, 1.0],  # random-resized-crop area range (fraction of the frame)
        "crop_aspect": [0.75, 1.3333],  # random-resized-crop aspect-ratio range
        "flip": True,  # horizontal flips; off for direction-sensitive datasets (SSv2)
        "randaugment": None,  # {num_ops: 2, magnitude: 9} or None
        "color_jitter": 0.0,  # strength of brightness/contrast/saturation jitter, 0 = off
        "mean": None,  # normalisation; None: the model card's
        "std": None,
        "workers": 2,
        "max_bad_fraction": 0.05,  # abort when more of the videos are unreadable
        "demo_videos": None,  # size of the built-in demo dataset (data.format = demo)
    },
    "train": {
        "epochs": 10,
        "batch_size": 16,  # per process
        "accumulation": 1,  # optimizer step every N batches
        "optimizer": "adamw",  # adamw | sgd
        "lr": 1e-3,  # for the total batch batch_size x processes x accumulation
        "weight_decay": 0.05,
        # kept free of weight decay: norm weights, biases, and what the model lists in
        # no_weight_decay() (VMF: the global tokens; DualFormer: its positional convs)
        "no_decay": ["norm", "bias", "listed"],
        "betas": [0.9, 0.999],
        "momentum": 0.9,
        "warmup_epochs": 1.0,
        "warmup_start": 0.01,  # warm-up starts at lr x this
        "min_lr": 1e-5,
        "label_smoothing": 0.1,
        "mixup": 0.0,  # mixup alpha, 0 = off
        "cutmix": 0.0,  # cutmix alpha, 0 = off
        "clip_grad": None,  # max gradient norm
        "ema": None,  # EMA decay of the weights, e.g. 0.999; None = off
        "amp": "auto",  # auto | none | bf16 | fp16 (auto: bf16 on GPUs that have it, else none)
        "sync_bn": False,  # SyncBatchNorm across GPUs (never on CPU)
        "seed": 0,
    },
    "eval": {
        "clips": None,  # temporal views; None: the model card's
        "crops": None,  # spatial views; None: the model card's
        "aggregate": "prob",  # prob (mean of softmax) | logits (mean of logits)
        "every": 1,  # evaluate every N epochs (and after the last)
        "batch_size": None,  # views per batch; None: train.batch_size
    },
    "output": {
        "dir": "runs/default",
        "keep_every": 0,  # also keep epoch_N.pth every N epochs, 0 = only last and best
    },
}


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


def _merge(base: dict, update: Mapping, path: str = "") -> dict:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        where = f"{path}{key}"
        if key not in merged:
            close = difflib.get_close_matches(key, list(merged), n=1)
            hint = f" (did you mean '{path}{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown key '{where}'{hint}")
        free_form = where in ("model.args",)  # model arguments are checked by the model
        if isinstance(merged[key], dict) and not free_form:
            if not isinstance(value, Mapping):
                raise ConfigError(f"'{where}' must be a mapping, got {value!r}")
            merged[key] = _merge(merged[key], value, f"{where}.")
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
    if recipe is not None:
        content = _read_recipe(recipe_path(recipe)) if isinstance(recipe, str | Path) else recipe
        config = _merge(config, content)
    for text in overrides:
        config = _merge(config, _nest(*parse_override(text)))
    _validate(config)
    return config


_CHOICES = {
    ("data", "format"): ("list", "kinetics", "ssv2", "ucf101", "hmdb51", "folder", "demo"),
    ("data", "sampling"): ("dense", "segment"),
    ("train", "optimizer"): ("adamw", "sgd"),
    ("train", "amp"): ("auto", "none", "bf16", "fp16"),
    ("eval", "aggregate"): ("prob", "logits"),
}
_POSITIVE = [
    ("data", "num_frames"),
    ("data", "crop_size"),
    ("train", "epochs"),
    ("train", "batch_size"),
    ("train", "accumulation"),
]


def _validate(config: dict) -> None:
    for (section, key), choices in _CHOICES.items():
        if config[section][key] not in choices:
            raise ConfigError(
                f"'{section}.{key}' must be one of {', '.join(choices)}, "
                f"got {config[section][key]!r}"
            )
    for section, key in _POSITIVE:
        value = config[section][key]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"'{section}.{key}' must be a positive integer, got {value!r}")


def dump_config(config: Mapping) -> str:
    """The configuration as YAML text (what a run folder records)."""
    return yaml.safe_dump(dict(config), sort_keys=False)
