"""The study's token remedies (remedies.py) and its per-frame arm (tsn.py), registered with
effvid from outside it: the same networks as when the remedies lived in effvid's Mobile-Former
(its last such commit's outputs, recorded in remedy_reference.json), the same weights and
state-dict keys, and what each remedy does."""

import hashlib
import json
from pathlib import Path

import pytest
import remedies
import torch
from remedies import RemedyFormer, RemedyFormerToMobile, RemedyMobileFormer

import effvid
from effvid.explain.diversity import token_diversity
from effvid.models.layers.tokens import mean_pairwise_cosine
from effvid.models.mobile_former import Former, MobileFormer
from effvid.models.registry import ModelArgumentError
from effvid.models.video_mobile_former import VideoMobileFormer

pytestmark = pytest.mark.research
REFERENCE = json.loads((Path(__file__).parent / "remedy_reference.json").read_text())["cases"]


def _input(model: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(123)
    if model.startswith("mobileformer"):
        return torch.randn(2, 3, 64, 64, generator=generator)
    return torch.randn(2, 3, 4, 64, 64, generator=generator)


def _randomise(model: torch.nn.Module, seed: int = 0) -> None:
    """Weights and BN statistics far from their init, so that every part of the model matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.copy_(noise.abs() + 0.5 if name.endswith("running_var") else noise * 0.2)


@pytest.mark.parametrize("case", REFERENCE, ids=str)
def test_remedy_models_compute_what_they_computed_inside_effvid(case):
    """For a fixed seed: the same state-dict keys, logits (eval and training mode), tokens,
    diversity term and token measures as effvid's Mobile-Former gave with these switches."""
    expected = REFERENCE[case]
    torch.manual_seed(0)
    model = effvid.create_model(expected["model"], num_classes=5, **expected["args"])
    keys = list(model.state_dict())
    assert len(keys) == expected["state_dict_keys"]
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    assert digest == expected["state_dict_keys_sha256"]
    x = _input(expected["model"])
    close = dict(rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x), torch.tensor(expected["eval_logits"]), **close)
        token_sum = model.forward_features(x).tokens.double().sum(dim=-1)
        torch.testing.assert_close(token_sum, torch.tensor(expected["token_sum"]).double(), **close)
        model.train()
        torch.manual_seed(1)
        torch.testing.assert_close(model(x), torch.tensor(expected["train_logits"]), **close)
    penalty = remedies.take_penalties(model)
    if expected["penalty"] is None:
        assert penalty is None
    else:
        assert float(penalty) == pytest.approx(expected["penalty"], rel=1e-5)
    if "token_cosine" in expected:
        measured = token_diversity(model.eval(), x).token_cosine
        assert measured == pytest.approx(expected["token_cosine"], rel=1e-4, abs=1e-6)


def test_without_a_remedy_the_builders_are_effvids_and_unknown_arguments_still_fail():
    torch.manual_seed(0)
    plain = effvid.create_model("vmf_xxs", num_classes=5)
    assert type(plain) is VideoMobileFormer
    assert type(effvid.create_model("mobileformer_52m")) is MobileFormer
    torch.manual_seed(0)
    off = effvid.create_model("vmf_xxs", num_classes=5, token_identity=False)
    assert isinstance(off, remedies.RemedyVideoMobileFormer)
    x = _input("vmf_xxs")
    with torch.no_grad():
        torch.testing.assert_close(off.eval()(x), plain.eval()(x), rtol=0, atol=0)
    with pytest.raises(ModelArgumentError):
        effvid.create_model("vmf_xxs", token_identiti=True)
    remedies.register()  # again: nothing changes
    assert type(effvid.create_model("vmf_xs", token_pre_norm=True)).__name__ == (
        "RemedyVideoMobileFormer"
    )


@pytest.mark.parametrize("switch", ["token_identity", "token_pre_norm"])
def test_token_switches_change_the_computation_not_the_weights(switch):
    """`token_identity` and `token_pre_norm` add no parameter: a state dict loads with either on
    or off, the outputs differ, the plain model loads the switched one's weights back, and
    without the global branch both are off."""
    plain = effvid.create_model("vmf_xxs", num_classes=5).eval()
    _randomise(plain)
    switched = effvid.create_model("vmf_xxs", num_classes=5, **{switch: True}).eval()
    report = effvid.load_checkpoint(switched, plain.state_dict())
    assert not report.missing and not report.unexpected
    back = effvid.create_model("vmf_xxs", num_classes=5).eval()
    effvid.load_checkpoint(back, switched.state_dict())
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(switched(clip), plain(clip), atol=1e-4)
        torch.testing.assert_close(back(clip), plain(clip))
    cnn = effvid.create_model("vmf_xxs", global_branch=False, **{switch: True})
    assert not getattr(cnn, switch)


def test_pre_norm_keeps_the_tokens_apart_when_the_former_attends_uniformly():
    """A Former attending uniformly adds the same vector to every token. Post-norm (the
    authors') then pulls the tokens together; pre-norm leaves their differences as they were."""
    torch.manual_seed(0)
    tokens = torch.randn(1, 3, 16)
    outputs = {}
    for pre_norm in (False, True):
        former = Former(16, num_heads=2)
        if pre_norm:
            former.__class__ = RemedyFormer
            former.adopt(None, pre_norm=True)
        with torch.no_grad():
            former.q.weight.zero_()  # equal scores: uniform attention
            former.channel_mlp.weight.zero_()
            former.channel_mlp.bias.normal_(0.0, 10.0)  # the update: one large vector
            former.ffn[-1].weight.zero_()  # no FFN update
            former.ffn[-1].bias.zero_()
            outputs[pre_norm] = former(tokens)
    assert mean_pairwise_cosine(outputs[False]) > mean_pairwise_cosine(tokens) + 0.5
    differences = outputs[True][:, 1:] - outputs[True][:, :1]
    torch.testing.assert_close(differences, tokens[:, 1:] - tokens[:, :1])


def test_pre_norm_tokens_reach_the_convs_and_the_head_normalised():
    """A pre-norm token stream grows with every update added to it. Former->Mobile (and the
    dynamic ReLUs, which read the same tokens) and the head read it normalised: a first version
    that let them read the raw stream diverged in training, its growth fed back through the
    convs into the next bridge."""
    model = effvid.create_model("vmf_xxs", num_classes=5, token_pre_norm=True).eval()
    with torch.no_grad():
        model.tokens.weight.mul_(100.0)  # a stream far from unit scale
    read = []
    for module in model.modules():
        if isinstance(module, RemedyFormerToMobile):
            module.register_forward_hook(lambda module, args, output: read.append(args[1]))
    with torch.no_grad():
        read.append(model.forward_features(torch.randn(2, 3, 4, 64, 64)).tokens)
    assert len(read) == 9
    for tokens in read:
        torch.testing.assert_close(
            tokens.mean(-1), torch.zeros(tokens.shape[:-1]), atol=1e-4, rtol=0
        )
        torch.testing.assert_close(
            tokens.std(-1, correction=0), torch.ones(tokens.shape[:-1]), atol=1e-3, rtol=0
        )


@pytest.mark.parametrize("switch", ["token_identity", "token_pre_norm"])
@pytest.mark.parametrize("per_frame", [False, True])
def test_remedies_train_with_either_token_layout(switch, per_frame):
    model = effvid.create_model(
        "vmf_xxs", num_classes=5, tokens_per_frame=per_frame, **{switch: True}
    )
    logits = model(torch.randn(2, 3, 4, 64, 64))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 4])).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.tokens.weight.grad.abs().sum() > 0


def test_token_diversity_penalises_merged_tokens_in_training_only():
    """`token_diversity=w` hands the trainer, once per training forward, w times the tokens'
    mean pairwise cosine after each block; gradient steps on it pull the tokens apart; eval
    outputs and the weights are those of the plain model."""
    torch.manual_seed(0)
    plain = effvid.create_model("vmf_xxs", num_classes=5)
    model = effvid.create_model("vmf_xxs", num_classes=5, token_diversity=0.5)
    assert not effvid.load_checkpoint(model, plain.state_dict()).missing
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clip), plain.eval()(clip))
    assert model.take_penalty() is None and plain.train()(clip) is not None
    assert remedies.take_penalties(plain) is None
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    penalties = []
    for _ in range(5):
        model.train()(clip)
        penalty = model.take_penalty()
        assert model.take_penalty() is None  # handed over once
        penalties.append(penalty.item())
        optimizer.zero_grad()
        penalty.backward()
        optimizer.step()
    assert 0 < penalties[0] <= 0.5 and penalties[-1] < penalties[0] / 2


def _stream(model: torch.nn.Module, clip: torch.Tensor, chunk: int) -> torch.Tensor:
    state, outputs = model.init_stream(clip.shape[0]), []
    with torch.no_grad():
        for start in range(0, clip.shape[2], chunk):
            logits, state = model.stream_step(clip[:, :, start : start + chunk], state)
            outputs.append(logits)
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("switch", ["token_identity", "token_pre_norm"])
def test_the_streaming_vmf_streams_with_a_remedy(switch):
    model = effvid.create_model("vmf_xxs", num_classes=5, causal=True, **{switch: True}).eval()
    _randomise(model)
    clip = torch.randn(1, 3, 6, 64, 64)
    with torch.no_grad():
        whole = model.forward_steps(clip)
    torch.testing.assert_close(_stream(model, clip, 1), whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(_stream(model, clip, 4), whole, rtol=0, atol=1e-5)


def test_an_ema_copy_of_a_remedy_model_reads_its_own_token_table():
    """The remedy modules hold the token table by reference, outside the module tree: a deep
    copy (the trainer's EMA) must follow its own table, not the original's."""
    import copy

    model = effvid.create_model("mobileformer_26m", num_classes=5, token_identity=True).eval()
    twin = copy.deepcopy(model)
    bridge = next(m for m in twin.modules() if isinstance(m, remedies.RemedyMobileToFormer))
    assert bridge.identity is twin.tokens.weight
    assert isinstance(model, RemedyMobileFormer)


def test_the_per_frame_arm_averages_the_image_model_over_frames():
    """tsn_mobileformer_52m: the image Mobile-Former 52M on every frame, logits averaged; an
    image checkpoint loads into it; the remedy switches reach its image model."""
    image = effvid.create_model("mobileformer_52m", num_classes=5).eval()
    _randomise(image)
    model = effvid.create_model("tsn_mobileformer_52m", num_classes=5).eval()
    report = effvid.load_checkpoint(model, image.state_dict())
    assert not report.missing and not report.unexpected
    clip = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        frames = torch.stack([image(clip[:, :, t]) for t in range(3)], dim=1)
        torch.testing.assert_close(model(clip), frames.mean(dim=1), rtol=1e-4, atol=1e-5)
    switched = effvid.create_model("tsn_mobileformer_52m", num_classes=5, token_diversity=0.1)
    switched.train()(clip)
    assert remedies.take_penalties(switched) is not None
