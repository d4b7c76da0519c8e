"""A recipe is refused when it loads, in one line naming the file (and line) or the key, when it
says something YAML would let pass silently (a key given twice, an alias inside itself, nothing
at all) or gives a model an argument of the wrong type or out of the range of its kind."""

import pytest
from torch import nn

from effvid.models import list_models
from effvid.models.base import ClassifierModel
from effvid.models.registry import _REGISTRY, ModelCard, register_model
from effvid.train.config import ConfigError, load_config


def _recipe(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_a_key_given_twice_is_refused_with_its_file_and_both_lines(tmp_path):
    path = _recipe(tmp_path, "model:\n  name: vmf_xxs\n  name: x3d_xs\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message and "line 3" in message and "first on line 2" in message
    assert "'name' is given twice" in message


def test_a_section_given_twice_is_refused(tmp_path):
    path = _recipe(tmp_path, "train: {lr: 0.1}\ndata: {workers: 0}\ntrain: {epochs: 3}\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml .*line 3.*'train' is given twice"):
        load_config(path)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_recipe_is_refused_by_name(tmp_path, text):
    path = _recipe(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"recipe {path} is empty"):
        load_config(path)


@pytest.mark.parametrize(
    "text", ["model: &m\n  args: *m\n", "train: &t\n  lr: *t\n", "data: &d [*d]\n"]
)
def test_a_recipe_that_contains_itself_is_refused_with_its_file_and_line(tmp_path, text):
    path = _recipe(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"recipe {path} .*line \d+.*refers to a node"):
        load_config(path)


def test_an_alias_to_another_node_is_still_fine(tmp_path):
    path = _recipe(tmp_path, "data: {mean: &m [0.5, 0.5, 0.5], std: *m}\n")
    assert load_config(path)["data"]["std"] == [0.5, 0.5, 0.5]


# One argument of each kind per family, given a value of the wrong type or out of its range.
BAD_ARGUMENTS = {
    "vmf_xxs": [
        ("causal", "maybe", "valid boolean"),
        ("token_dim", 0, "greater than or equal"),
        ("num_tokens", -2, "greater than or equal"),
        ("drop_path_rate", 1.5, "less than 1"),
        ("global_branch", 1, "valid boolean"),
        ("temporal_kernel", 2.5, "valid integer"),
    ],
    "mobileformer_26m": [
        ("head_hidden", 0, "greater than or equal"),
        ("dynamic_relu", "yes please", "valid boolean"),
    ],
    "x3d_xs": [
        ("stage_depths", "abc", "a list, not text"),
        ("dropout", -0.1, "greater than or equal"),
        ("bottleneck_factor", "inf", "valid number"),
    ],
    "dualformer_t": [
        ("embed_dims", [16, "x"], "embed_dims[1]' must be a valid integer"),
        ("qkv_bias", "no", "boolean"),
        ("in_chans", 0, "greater than or equal"),
    ],
}
BAD_CASES = [
    pytest.param(name, argument, value, rule, id=f"{name}.{argument}={value}")
    for name, cases in BAD_ARGUMENTS.items()
    for argument, value, rule in cases
]


@pytest.mark.parametrize(("name", "argument", "value", "rule"), BAD_CASES)
def test_model_arguments_of_the_wrong_type_or_range_are_refused_by_key(name, argument, value, rule):
    recipe = {"model": {"name": name, "args": {argument: value}}}
    with pytest.raises(ConfigError) as error:
        load_config(recipe)
    message = str(error.value)
    assert message.startswith(f"'model.args.{argument}") and rule in message, message
    assert "' must be " in message, message


def test_every_registered_model_has_an_argument_schema():
    from effvid.models.registry import argument_schema

    for name in list_models():
        assert argument_schema(name) is not None, name


def test_good_model_arguments_still_load():
    args = {"causal": True, "drop_path_rate": 0.1, "blocks": [[3, 12, 1], [6, 24, 2]]}
    assert load_config({"model": {"args": args}})["model"]["args"] == args
    from effvid.models.registry import argument_schema

    dualformer = {"embed_dims": [16, 32, 64, 128], "qk_scale": None, "temporal_pooling": [-1, 1]}
    assert argument_schema("dualformer_t").model_validate(dualformer)


def test_num_classes_comes_from_the_data_not_from_model_args():
    with pytest.raises(ConfigError, match=r"'model.args.num_classes' is not set by a recipe"):
        load_config(None, ["model.args.num_classes=5"])


class _Tiny(ClassifierModel):
    classifier_path = "head"

    def __init__(self, *, width: int = 4, scaled: bool = False, num_classes: int = 2) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.head = nn.Linear(width, num_classes)


def test_a_newly_registered_model_is_checked_from_its_signature(monkeypatch):
    """No list of arguments per model: the builder's return annotation and the class's type
    hints are the declaration."""
    from effvid.models.registry import argument_schema

    monkeypatch.setattr("effvid.models.registry._REGISTRY", dict(_REGISTRY))
    card = ModelCard("tiny_for_schema", "tiny", 4, 32, (0.5,) * 3, (0.5,) * 3, 2, 1, 1, 10, 10, "")

    @register_model(card)
    def tiny_for_schema(**overrides) -> _Tiny:
        return _Tiny(**overrides)

    argument_schema.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"'model.args.width' must be greater than or"):
            load_config({"model": {"name": "tiny_for_schema", "args": {"width": 0}}})
        with pytest.raises(ConfigError, match=r"'model.args.scaled' must be a valid boolean"):
            load_config({"model": {"name": "tiny_for_schema", "args": {"scaled": "on"}}})
    finally:
        argument_schema.cache_clear()
