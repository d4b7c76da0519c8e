"""The model zoo: name -> builder and model card; `create_model`, `list_models`, `get_model_card`.

Each variant is one tiny builder function decorated with `@register_model(card)`. The card says
what the variant expects (frames, size, normalisation, test views) and what it costs (params,
multiply-adds per view), measured on the model as registered.

The arguments a builder accepts are those of the model class it returns (its return annotation),
with their declared types: `argument_schema(name)` turns them into a pydantic model that a recipe's
`model.args` are checked against before anything is built (a bool is a bool, a count is >= 1).
"""

import difflib
import fnmatch
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Any

import pydantic
from pydantic import Field
from torch import nn

from effvid.errors import EffvidError, InputError
from effvid.models.base import ClassifierModel


@dataclass(frozen=True)
class ModelCard:
    """What a registered model expects and costs.

    FLOPs are multiply-adds (the convention of the Mobile-Former, X3D and DualFormer papers and of
    fvcore) for one view of `input_shape`; `flops_total` multiplies by the default test views
    (`test_clips` temporal clips x `test_crops` spatial crops).
    """

    name: str
    family: str
    num_frames: int  # 1 for image models
    input_size: int  # square crop side, pixels
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_classes: int
    test_clips: int
    test_crops: int
    params: int
    flops_per_view: int
    source: str
    sampling_rate: int | None = None  # frame interval of dense sampling; None for images
    notes: str = ""
    extras: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.num_frames > 1

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One view, batch 1: (1, 3, T, H, W) for video models, (1, 3, H, W) for image models."""
        return self.batch_shape()

    def batch_shape(
        self, batch: int = 1, frames: int | None = None, size: int | None = None
    ) -> tuple[int, ...]:
        """The input shape for `batch` views, optionally with other frames or crop size."""
        spatial = (size or self.input_size,) * 2
        if self.is_video:
            return (batch, 3, frames or self.num_frames, *spatial)
        return (batch, 3, *spatial)

    @property
    def test_views(self) -> int:
        return self.test_clips * self.test_crops

    @property
    def flops_total(self) -> int:
        return self.flops_per_view * self.test_views


@dataclass(frozen=True)
class _Entry:
    builder: Callable[..., nn.Module]
    card: ModelCard


_REGISTRY: dict[str, _Entry] = {}


class UnknownModelError(EffvidError, KeyError):
    """No model is registered under the requested name."""

    def __str__(self) -> str:
        return str(self.args[0])


def register_model(
    card: ModelCard, *, replace: bool = False
) -> Callable[[Callable[..., nn.Module]], Callable]:
    """Decorator: register `builder(**overrides) -> nn.Module` under `card.name`; with `replace`
    a registered model's builder and card are replaced (e.g. by a builder that wraps the one
    `model_builder` returns), otherwise a name registered twice is an error."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if card.name in _REGISTRY and not replace:
            raise InputError(f"model {card.name!r} is registered twice")
        _REGISTRY[card.name] = _Entry(builder, card)
        return builder

    return decorate


def model_builder(name: str) -> Callable[..., nn.Module]:
    """The function registered to build model `name` from its overrides."""
    return _entry(name).builder


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}{hint} (see effvid.list_models())")
    return _REGISTRY[name]


def _natural_key(name: str) -> list:
    """'mobileformer_26m' sorts before 'mobileformer_151m'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, e.g. 'vmf_*', naturally sorted."""
    matching = (name for name in _REGISTRY if fnmatch.fnmatchcase(name, pattern))
    return sorted(matching, key=_natural_key)


def get_model_card(name: str) -> ModelCard:
    return _entry(name).card


class ImageModelError(EffvidError, ValueError):
    """An image model (input (B, 3, H, W)) was given where a model runs on video clips."""


def require_video_model(
    card: ModelCard, source: str | os.PathLike, *, weights: str | None = None
) -> None:
    """ImageModelError naming `source` when `card` is an image model's (not `is_video`), with
    what to do instead: inflate the weights into the VMF whose card names the image model as
    its `image_base` (`effvid.load_checkpoint`). `weights`: how the advice names the image
    weights to inflate (default: those of `source`)."""
    if card.is_video:
        return
    vmfs = {get_model_card(name).extras.get("image_base"): name for name in list_models()}
    vmfs.pop(None, None)
    problem = f"{source} holds {card.name}, an image model (input (B, 3, H, W))"
    if card.name in vmfs:
        vmf = vmfs[card.name]
        if weights is None:
            weights = repr(str(source))
            if not os.path.isfile(source):  # a model folder or hub name loads only as itself
                weights = f"effvid.create_model({weights}, pretrained=True).state_dict()"
        advice = f"inflate its weights into {vmf}, the VMF built on it"
    else:
        bases = sorted(vmfs, key=_natural_key)
        vmf, weights = vmfs[bases[0]], f"{bases[0].upper()}_WEIGHTS"
        built_on = ", ".join(f"{vmfs[base]} on {base}" for base in bases)
        advice = f"no VMF is built on it ({built_on}); inflate the weights of one of those"
    raise ImageModelError(
        f"{problem}, and this needs a video model: {advice}, "
        f"effvid.load_checkpoint(effvid.create_model({vmf!r}), {weights}), and fine-tune it"
    )


def create_model(
    name: str | os.PathLike,
    *,
    pretrained: bool = False,
    num_classes: int | None = None,
    **overrides,
) -> ClassifierModel:
    """Build a registered model with fresh weights, or the model a model folder holds.

    `name`: a registered model's name; or a model folder (`save_pretrained`, `effvid
    save-pretrained`) or `hf-hub:org/name[@revision]`: then the model the folder names, with its
    constructor arguments and classes (`model.class_names`, `model.preprocessing`) and, with
    `pretrained`, its trained weights in eval mode (see `effvid.models.pretrained`). effvid ships
    no trained weights, so `pretrained` with a registered name is refused.

    `num_classes` replaces the card's (or the folder's: a fresh classifier) class count; any
    other keyword overrides one constructor argument of the model class (e.g.
    `drop_path_rate=0.1`). The card's params and FLOPs hold for the defaults only. The model
    gets `model_name` and `model_args` (the overrides) attributes.
    """
    if not (isinstance(name, str) and name in _REGISTRY):
        from effvid.models.pretrained import create_from_folder, is_folder_reference

        if is_folder_reference(name):
            return create_from_folder(
                name, pretrained=pretrained, num_classes=num_classes, **overrides
            )
    entry = _entry(name)
    if pretrained:
        raise NoPretrainedWeightsError(
            f"effvid ships no trained weights for {name!r}: train it (effvid train), make a model "
            f"folder of the run (effvid save-pretrained RUN_FOLDER OUT) and give that folder, or "
            f"a 'hf-hub:org/name' one, to create_model(..., pretrained=True)"
        )
    classes = {} if num_classes is None else {"num_classes": num_classes}
    model = entry.builder(**overrides, **classes)
    model.model_name = name
    model.model_args = dict(overrides)
    return model


class NoPretrainedWeightsError(EffvidError, ValueError):
    """`pretrained=True` asked of a registered name: effvid ships no weights."""


class ModelArgumentError(EffvidError, TypeError):
    """An override names an argument the model's constructor does not take."""


def build_model(
    model_cls: type[ClassifierModel], config: Mapping, overrides: Mapping
) -> ClassifierModel:
    """Instantiate `model_cls(**config, **overrides)`, refusing unknown override names clearly."""
    accepted = model_cls.constructor_arguments()
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        raise ModelArgumentError(
            f"{model_cls.__name__} has no argument {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(accepted)}"
        )
    return model_cls(**{**config, **overrides})


# The ranges every family's constructor follows, by the kind of argument: a scalar integer is a
# size, a count, a kernel or a stride (>= 1); a float is a rate, a ratio or a factor (finite,
# >= 0), and a rate of dropping something (its name says `drop`) stays below 1. Entries of
# sequences are only type-checked (some use -1 as a marker, e.g. DualFormer's temporal_pooling).
_STRICT = Field(strict=True)


def _value_type(hint: Any) -> Any:
    """`hint` as a strict pydantic type, for a value inside a sequence or an optional."""
    origin, inner = typing.get_origin(hint), typing.get_args(hint)
    if hint is None or hint is type(None):
        return None
    if hint is bool or hint is int or hint is str:
        return Annotated[hint, _STRICT]
    if hint is float:
        return Annotated[float, Field(strict=True, allow_inf_nan=False)]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_value_type(arg) for arg in inner)]  # noqa: UP007
    if origin is typing.Literal:
        return hint
    if origin in (list, tuple, Sequence) and inner:
        return Sequence[_value_type(inner[0])]  # a list or a tuple, not a string
    return Any  # not a value a recipe can give (a module, a callable): the constructor decides


def _argument_type(name: str, hint: Any) -> Any:
    """The declared type of constructor argument `name`, with the range of its kind (an
    optional one too: `qk_scale: float | None`)."""
    options = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in options:
        given = [option for option in options if option is not type(None)]
        if len(given) == 1:
            return _argument_type(name, given[0]) | None
    if hint is int:
        return Annotated[int, Field(strict=True, ge=1)]
    if hint is float:
        below_one = {"lt": 1.0} if "drop" in name else {}
        return Annotated[float, Field(strict=True, ge=0.0, allow_inf_nan=False, **below_one)]
    return _value_type(hint)


@cache
def argument_schema(name: str) -> type[pydantic.BaseModel] | None:
    """A pydantic model of the keyword arguments model `name` accepts (every one optional: the
    builder supplies the variant's values), each with its declared type and the range of its
    kind; None when the builder does not say which class it returns. Names that are not
    arguments are left to `build_model` (which lists the accepted ones)."""
    returned = typing.get_type_hints(_entry(name).builder).get("return")
    if not (inspect.isclass(returned) and issubclass(returned, ClassifierModel)):
        return None
    fields = {
        argument: (_argument_type(argument, parameter.annotation), None)
        for argument, parameter in returned.constructor_parameters().items()
    }
    config = pydantic.ConfigDict(extra="allow", protected_namespaces=())
    return pydantic.create_model(f"{name} arguments", __config__=config, **fields)
