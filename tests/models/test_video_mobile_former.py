"""Video Mobile-Former: the ladder, the ablation switches, and inflation from the image model."""

import pytest
import torch

import effvid
from effvid.models.mobile_former import MobileFormerBlock, MobileFormerDownBlock
from effvid.models.video_mobile_former import FactorizedDepthwiseConv3d

LADDER = effvid.list_models("vmf_*")


def test_ladder_spans_half_to_six_gflops_total_with_two_under_one():
    totals = {name: effvid.get_model_card(name).flops_total / 1e9 for name in LADDER}
    assert min(totals.values()) == pytest.approx(0.5, abs=0.1)
    assert 4.5 <= max(totals.values()) <= 6.0
    assert sum(total <= 1.0 for total in totals.values()) >= 2


@pytest.mark.parametrize("name", LADDER)
def test_cards_say_what_is_reconstruction(name):
    card = effvid.get_model_card(name)
    assert "[paper]" in card.source and "[effvid reconstruction" in card.source
    assert card.extras["image_base"] in effvid.list_models("mobileformer_*")
    assert card.is_video and card.sampling_rate == 8


def test_one_token_set_per_clip_sees_every_frame():
    """Editing only the last frame changes the clip's tokens: the bridges attend over T*H*W."""
    model = effvid.create_model("vmf_xxs").eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    edited = clip.clone()
    edited[:, :, -1] += 1.0
    with torch.no_grad():
        tokens = model.forward_features(clip)[1]
        tokens_edited = model.forward_features(edited)[1]
    assert tokens.shape == (1, 3, 128)
    assert not torch.allclose(tokens, tokens_edited)


ABLATIONS = {
    "cnn_only": dict(global_branch=False),
    "no_mobile_to_former": dict(mobile_to_former=False),
    "no_former_to_mobile": dict(former_to_mobile=False),
    "static_relu": dict(dynamic_relu=False),
    "six_wide_tokens": dict(num_tokens=6, token_dim=192),
    "temporal_kernel_1": dict(temporal_kernel=1, stem_temporal_kernel=1),
    "factorized": dict(factorized_depthwise=True),
    "stem_temporal_stride": dict(stem_temporal_stride=2),
    "tokens_per_frame": dict(tokens_per_frame=True),
    "tokens_per_frame_stem_stride": dict(tokens_per_frame=True, stem_temporal_stride=2),
}


@pytest.mark.parametrize("overrides", ABLATIONS.values(), ids=ABLATIONS.keys())
def test_ablation_switches_build_and_train(overrides):
    """Forward and backward with every switch: every parameter gets a finite gradient, and the
    token branch (where there is one) a non-zero one, so no part of the model is cut off."""
    model = effvid.create_model("vmf_xxs", num_classes=5, **overrides)
    logits = model(torch.randn(2, 3, 4, 64, 64))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([1, 3])).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert model.stem[0].weight.grad.abs().sum() > 0
    if model.tokens is not None:
        assert model.tokens.weight.grad.abs().sum() > 0


def test_ablation_switches_change_the_structure():
    def count(model, cls):
        return sum(isinstance(module, cls) for module in model.modules())

    cnn_only = effvid.create_model("vmf_xxs", global_branch=False)
    assert cnn_only.tokens is None and cnn_only.local_global is None
    assert not any(
        name.endswith(("local_global", "global_block")) for name, _ in cnn_only.named_modules()
    )
    assert count(cnn_only, effvid.models.layers.DynamicReLU) == 0

    full = effvid.create_model("vmf_xxs")
    blocks = count(full, MobileFormerBlock) + count(full, MobileFormerDownBlock)
    assert count(full, effvid.models.layers.DynamicReLU) == 2 * blocks
    assert (
        effvid.create_model("vmf_xxs", dynamic_relu=False).features[1].hyper1.__class__.__name__
        == "StaticReLU"
    )
    no_m2f = effvid.create_model("vmf_xxs", mobile_to_former=False)
    assert all(getattr(block, "local_global", None) is None for block in no_m2f.features)
    no_f2m = effvid.create_model("vmf_xxs", former_to_mobile=False)
    assert all(getattr(block, "global_local", None) is None for block in no_f2m.features)

    assert full.stem[0].kernel_size == (3, 3, 3) and full.stem[0].stride == (1, 2, 2)
    assert full.features[2].conv1[0].kernel_size == (3, 3, 3)
    assert full.features[2].conv1[0].stride == (1, 2, 2)
    assert effvid.create_model("vmf_xxs", temporal_kernel=1).features[2].conv1[0].kernel_size == (
        1,
        3,
        3,
    )
    factorized = effvid.create_model("vmf_xxs", factorized_depthwise=True)
    assert isinstance(factorized.features[2].conv1[0], FactorizedDepthwiseConv3d)
    strided = effvid.create_model("vmf_xxs", stem_temporal_stride=2).eval()
    with torch.no_grad():
        assert strided.forward_features(torch.randn(1, 3, 8, 64, 64))[0].shape[2] == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(temporal_kernel=2), "temporal_kernel must be an odd positive size, got 2"),
        (dict(factorized_depthwise=True, temporal_kernel=1), "needs temporal_kernel > 1"),
        (dict(stem_temporal_stride=0), "stem_temporal_stride must be >= 1, got 0"),
        (dict(tokens_per_frame=True, global_branch=False), "needs the global branch"),
    ],
)
def test_invalid_temporal_choices_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        effvid.create_model("vmf_xxs", **overrides)


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights and BN statistics far from their init, so that every part of the model matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.copy_(noise.abs() + 0.5 if name.endswith("running_var") else noise * 0.2)


@pytest.mark.parametrize("factorized", [False, True])
def test_centre_inflated_vmf_equals_the_image_model_on_a_static_clip(factorized):
    image_model = effvid.create_model("mobileformer_52m", num_classes=10)
    _randomise(image_model)
    image_model.eval()
    video_model = effvid.create_model("vmf_xxs", num_classes=10, factorized_depthwise=factorized)
    report = effvid.load_checkpoint(video_model, image_model.state_dict())
    assert report.inflated and not report.new_classifier
    video_model.eval()

    frame = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = image_model(frame)
        logits = video_model(frame.unsqueeze(2).expand(-1, -1, 5, -1, -1))
    assert expected.abs().max() > 0.5  # the comparison is not between near-zero logits
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_tokens_per_frame_read_and_write_only_their_frame():
    model = effvid.create_model("vmf_xxs", tokens_per_frame=True).eval()
    _randomise(model)
    to_former, to_mobile = model.features[1].local_global, model.features[1].global_local
    x = torch.randn(2, 12, 4, 16, 16)
    tokens = torch.randn(2, 4, 3, 128)
    edited_x = x.clone()
    edited_x[:, :, 2] += 1.0
    edited_tokens = tokens.clone()
    edited_tokens[:, 2] += 1.0
    with torch.no_grad():
        changed = (to_former(edited_x, tokens) - to_former(x, tokens)).abs().amax(dim=(0, 2, 3))
        assert changed[2] > 1e-3 and changed[[0, 1, 3]].max() == 0
        read = to_mobile(x, edited_tokens) - to_mobile(x, tokens)
        changed = read.abs().amax(dim=(0, 1, 3, 4))
        assert changed[2] > 1e-3 and changed[[0, 1, 3]].max() == 0
        assert model.forward_features(torch.randn(2, 3, 4, 64, 64))[1].shape == (2, 4, 3, 128)


def test_tokens_per_frame_share_the_weights_and_equal_per_clip_on_one_frame():
    per_frame = effvid.create_model("vmf_xxs", num_classes=5, tokens_per_frame=True).eval()
    _randomise(per_frame)
    per_clip = effvid.create_model("vmf_xxs", num_classes=5).eval()
    per_clip.load_state_dict(per_frame.state_dict())
    with torch.no_grad():
        one_frame = torch.randn(2, 3, 1, 64, 64)
        torch.testing.assert_close(per_frame(one_frame), per_clip(one_frame))
        tokens = per_frame.forward_features(torch.randn(2, 3, 4, 64, 64))[1]
        assert not torch.allclose(tokens[:, 0], tokens[:, 1], atol=1e-3)  # each read its frame
