"""The surface every effvid model has, written once (the timm convention, made uniform).

    features = model.forward_features(x)     # Features(feature_map, tokens)
    logits = model.forward_head(features)    # (B, num_classes)
    hidden = model.forward_head(features, pre_logits=True)   # (B, head_hidden_size)
    model(x) == model.forward_head(model.forward_features(x))

- `forward_features` returns `Features`: the last feature map (B, num_features, [T,] H, W) and
  the global tokens (B, M, D), or (B, T, M, D) with tokens per frame, or None for a family
  without tokens. Generic code (Grad-CAM, feature extraction) reads `features.feature_map`.
- `num_features` is the channel count of that feature map; `head_hidden_size` the width the
  final classifier reads (the pre-logits), which the head may compute from the feature map and
  the tokens (Mobile-Former, X3D) or equal `num_features` (DualFormer).
- `get_classifier()` is the final linear layer, at `classifier_path`; `reset_classifier(n)`
  replaces it by a fresh one (N(0, 0.01) weights, zero bias: the rule of every family here), or
  by an Identity for `n = 0`, so that the model then returns its pre-logits.
- `no_weight_decay()` names parameters a recipe may exempt from weight decay.
- `checkpoint_adapter` declares how the family reads weights saved in other layouts
  (`effvid.load_checkpoint` applies it).
- `model_name` and `model_args` say how `create_model` built it; `class_names` (labels in the
  order of the logits) and `preprocessing` (the input it was trained on) are those of the
  weights it was loaded with (`load_model`, `create_model(folder, pretrained=True)`), None for
  fresh weights. `save_pretrained(directory)` writes it all as a model folder.
"""

import inspect
import os
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import torch
from torch import nn

Inflation = Literal["centre", "replicate"]
CLASSIFIER_INIT_STD = 0.01


class Features(NamedTuple):
    """What `forward_features` returns: the last feature map and the global tokens (or None)."""

    feature_map: torch.Tensor
    tokens: torch.Tensor | None = None


@dataclass(frozen=True)
class CheckpointAdapter:
    """How a family reads weights saved in another layout.

    `prepare(model, state) -> (state, notes)` rewrites a flat state dict into the model's names
    (e.g. DualFormer's official mmaction and 2-D ImageNet layouts) and says what it did;
    `inflation` is the default rule for 2-D kernels loaded into 3-D convs ('centre' or
    'replicate', see `effvid.models.weights`).
    """

    prepare: Callable[[nn.Module, dict[str, torch.Tensor]], tuple[dict, list[str]]] | None = None
    inflation: Inflation = "centre"

    def apply(
        self, model: nn.Module, state: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], list[str]]:
        return (state, []) if self.prepare is None else self.prepare(model, state)


def linear_classifier(in_features: int, num_classes: int, *, init: bool = True) -> nn.Module:
    """The final classifier: Linear(in_features, num_classes), or Identity for 0 classes.

    With `init` its weights are N(0, 0.01) and its bias 0; without, PyTorch's default (for a
    family that initialises every module in one pass after construction)."""
    if num_classes <= 0:
        return nn.Identity()
    linear = nn.Linear(in_features, num_classes)
    if init:
        with torch.no_grad():
            linear.weight.normal_(0.0, CLASSIFIER_INIT_STD)
            linear.bias.zero_()
    return linear


class ClassifierModel(nn.Module):
    """Base class of every registered model: see the module docstring for the surface.

    Subclasses set `num_classes`, `num_features` and `head_hidden_size` in `__init__`, name their
    final linear layer in `classifier_path`, and implement `forward_features` and
    `forward_head`.
    """

    classifier_path: ClassVar[str]
    checkpoint_adapter: ClassVar[CheckpointAdapter] = CheckpointAdapter()
    num_classes: int
    num_features: int
    head_hidden_size: int
    model_name: str
    model_args: dict
    class_names: list[str] | None = None
    preprocessing: dict | None = None

    def forward_features(self, x: torch.Tensor) -> Features:
        raise NotImplementedError

    def forward_head(self, features: Features, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.get_submodule(self.classifier_path)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final layer for `num_classes` classes (Identity for 0: pre-logits out); the
        class names of other classes are dropped."""
        if num_classes != getattr(self, "num_classes", None):
            self.class_names = None
        self.num_classes = num_classes
        self.set_submodule(
            self.classifier_path, linear_classifier(self.head_hidden_size, num_classes)
        )

    def save_pretrained(
        self,
        directory: str | os.PathLike,
        *,
        class_names: Sequence[str] | None = None,
        preprocessing: Mapping | None = None,
        card: str | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write this model as a model folder (`model.safetensors`, `config.json`, `README.md`)
        that `effvid.create_model(directory, pretrained=True)` and every `--checkpoint` read.

        `class_names` (default: the model's) in label order; `preprocessing`: the input it was
        trained on, as `Preprocessing.as_dict()` (default: the model's, else its card's at
        prediction time); `card`: the model card's markdown body (default: a short one); an
        existing model folder is replaced only with `overwrite`. Returns the folder."""
        from effvid.models.pretrained import save_model_folder

        return save_model_folder(
            self,
            directory,
            class_names=class_names,
            preprocessing=preprocessing,
            card=card,
            overwrite=overwrite,
        )

    def no_weight_decay(self) -> set[str]:
        """Parameters a recipe may exclude from weight decay besides norms and biases."""
        return set()

    @classmethod
    def constructor_parameters(cls) -> dict[str, inspect.Parameter]:
        """The keyword parameters `cls(...)` accepts (what `create_model` overrides may set),
        each with its default and its type hint as its annotation. A family whose `__init__`
        passes `**kwargs` to a part it builds adds that part's."""
        return keyword_parameters(cls)

    @classmethod
    def constructor_arguments(cls) -> list[str]:
        """The keyword names `cls(...)` accepts."""
        return list(cls.constructor_parameters())


def keyword_parameters(module_cls: type[nn.Module]) -> dict[str, inspect.Parameter]:
    """name -> parameter for the keywords `module_cls(...)` accepts, following `**kwargs` that
    its `__init__` passes on to a base class; annotations are the resolved type hints (`Any`
    where there is none)."""
    found: dict[str, inspect.Parameter] = {}
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    for klass in module_cls.__mro__:
        if "__init__" not in vars(klass) or klass in (ClassifierModel, nn.Module):
            continue
        hints = typing.get_type_hints(klass.__init__)
        parameters = list(inspect.signature(klass.__init__).parameters.values())[1:]
        for parameter in parameters:
            if parameter.kind in kinds and parameter.name not in found:
                hint = hints.get(parameter.name, typing.Any)
                found[parameter.name] = parameter.replace(annotation=hint)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return found


def keyword_arguments(module_cls: type[nn.Module]) -> list[str]:
    """The keyword names `module_cls(...)` accepts (see `keyword_parameters`)."""
    return list(keyword_parameters(module_cls))
