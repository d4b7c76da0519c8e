"""Recipes: defaults, files with a base, shipped names, overrides, and clear refusals."""

import pytest

from effvid.engine.config import ConfigError, load_config, parse_override


def test_defaults_recipe_and_overrides_layer_in_order(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("train: {lr: 0.01, epochs: 3}\nmodel: {name: x3d_xs}\n")
    child = tmp_path / "child.yaml"
    child.write_text("base: base.yaml\ntrain: {epochs: 5}\n")
    config = load_config(child, ["train.lr=3e-4", "data.randaugment={num_ops: 1, magnitude: 5}"])
    assert config["train"]["epochs"] == 5 and config["train"]["lr"] == 3e-4
    assert config["model"]["name"] == "x3d_xs"
    assert config["data"]["randaugment"] == {"num_ops": 1, "magnitude": 5}
    assert config["train"]["batch_size"] == 16  # a default


def test_shipped_recipes_load_by_name():
    for name in ("demo", "vmf_xs_k400", "vmf_xs_ssv2", "dualformer_t_k400", "dualformer_s_hmdb51"):
        assert load_config(name)["model"]["name"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.learning_rate=1", "unknown key 'train.learning_rate'"),
        ("train.lrr=1", "did you mean 'train.lr'"),
        ("train.optimizer=adam", "must be one of adamw, sgd"),
        ("train.epochs=0", "positive integer"),
        ("lr", "section.key=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_override_values_are_yaml():
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a.b=null") == (["a", "b"], None)
    assert parse_override("a.b=text") == (["a", "b"], "text")
