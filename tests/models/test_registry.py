"""Every registered model: builds, runs forward and backward, and agrees with its model card."""

import pytest
import torch

import effvid
from effvid.models import ClassifierModel, Features
from effvid.models.base import CheckpointAdapter
from effvid.models.registry import ModelArgumentError, UnknownModelError
from tests.conftest import reduced_model, small_input

ALL_MODELS = effvid.list_models()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_forward_small_input(name):
    card = effvid.get_model_card(name)
    model = effvid.create_model(name).eval()
    with torch.no_grad():
        logits = model(small_input(card))
    assert logits.shape == (2, card.num_classes)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_backward_small_input(name):
    card = effvid.get_model_card(name)
    model = reduced_model(name)
    logits = model(small_input(card))
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_card_params_and_flops_match_the_model(name):
    card = effvid.get_model_card(name)
    with torch.device("meta"):
        model = effvid.create_model(name)
    assert effvid.count_params(model) == card.params
    flops = effvid.count_flops(model, card.input_shape).total
    assert flops == pytest.approx(card.flops_per_view, rel=0.01)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_has_the_documented_surface(name):
    """effvid.models.base: Features out of forward_features, num_features = the feature map's
    channels, head_hidden_size = the classifier's input, one classifier at classifier_path."""
    card = effvid.get_model_card(name)
    model = reduced_model(name).eval()
    assert isinstance(model, ClassifierModel)
    assert isinstance(type(model).checkpoint_adapter, CheckpointAdapter)
    assert "num_classes" in type(model).constructor_arguments()
    x = small_input(card)
    with torch.no_grad():
        features = model.forward_features(x)
        assert isinstance(features, Features)
        assert features.feature_map.ndim == x.ndim
        assert features.feature_map.shape[:2] == (2, model.num_features)
        if features.tokens is not None:
            assert features.tokens.shape[0] == 2 and features.tokens.ndim in (3, 4)
        assert torch.equal(model.forward_head(features), model(x))
        hidden = model.forward_head(features, pre_logits=True)
        assert hidden.shape == (2, model.head_hidden_size)
        classifier = model.get_classifier()
        assert classifier is model.get_submodule(model.classifier_path)
        assert (classifier.in_features, classifier.out_features) == (
            model.head_hidden_size,
            card.num_classes,
        )
        model.reset_classifier(7)
        fresh = model.get_classifier()
        assert fresh.out_features == 7 and model.num_classes == 7
        assert torch.equal(fresh.bias, torch.zeros(7)) and 0.005 < fresh.weight.std() < 0.02
        assert model(x).shape == (2, 7)
        model.reset_classifier(0)
        assert torch.equal(model(x), hidden)  # no classifier: the pre-logits
    parameters = {name for name, _ in model.named_parameters()}
    assert model.no_weight_decay() <= parameters


def test_create_model_overrides_and_num_classes():
    model = effvid.create_model("vmf_xxs", num_classes=10, drop_path_rate=0.1)
    assert model.num_classes == 10
    assert model.model_name == "vmf_xxs"
    assert model.get_classifier().out_features == 10


def test_unknown_model_and_argument_are_clear_errors():
    with pytest.raises(UnknownModelError, match="did you mean vmf_xs"):
        effvid.create_model("vmf_xss")
    with pytest.raises(ModelArgumentError, match=r"no argument 'temporal_kernal'.*temporal_kernel"):
        effvid.create_model("vmf_xs", temporal_kernal=1)


def test_list_models_pattern_and_order():
    assert effvid.list_models("mobileformer_*") == [
        f"mobileformer_{v}" for v in ("26m", "52m", "96m", "151m", "214m", "294m", "508m")
    ]
    assert set(effvid.list_models("vmf_*")) == {"vmf_xxs", "vmf_xs", "vmf_s", "vmf_m", "vmf_l"}
    assert effvid.list_models("nothing*") == []


def test_wrong_input_layout_is_refused():
    model = effvid.create_model("vmf_xxs")
    with pytest.raises(ValueError, match=r"expects input of shape \(B, C, T, H, W\)"):
        model(torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("name", ["mobileformer_26m", "vmf_xxs", "dualformer_t"])
def test_convs_run_channels_last_but_state_dicts_are_plain(name):
    with torch.device("meta"):
        model = effvid.create_model(name)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Conv3d))
    memory_format = torch.channels_last_3d if conv.weight.ndim == 5 else torch.channels_last
    assert conv.weight.is_contiguous(memory_format=memory_format)
    assert all(tensor.is_contiguous() for tensor in model.state_dict().values())


def test_state_dicts_save_with_safetensors(tmp_path):
    from safetensors.torch import load_file, save_file

    model = effvid.create_model("vmf_xxs")
    save_file(model.state_dict(), tmp_path / "weights.safetensors")
    effvid.load_checkpoint(effvid.create_model("vmf_xxs"), tmp_path / "weights.safetensors")
    assert torch.equal(
        load_file(tmp_path / "weights.safetensors")["stem.0.weight"], model.stem[0].weight
    )
