"""The streaming VMF (`causal=True`): nothing depends on a later frame, and streaming a clip in
chunks of any length gives the outputs of the whole clip, with a state that does not grow."""

import pytest
import torch

import effvid
from effvid.models.layers.streaming import CausalConv3d

LADDER = effvid.list_models("vmf_*")


def _causal(name: str, **overrides) -> torch.nn.Module:
    model = effvid.create_model(name, num_classes=5, causal=True, **overrides).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights and statistics far from their init: every layer matters
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                tensor.copy_(noise.abs() + 0.5 if key.endswith("running_var") else noise * 0.1)
    return model


def _stream(model, clip, chunk):
    state, outputs = model.init_stream(clip.shape[0]), []
    with torch.no_grad():
        for start in range(0, clip.shape[2], chunk):
            logits, state = model.stream_step(clip[:, :, start : start + chunk], state)
            outputs.append(logits)
    return torch.cat(outputs, dim=1), state


@pytest.mark.parametrize(
    ("name", "overrides"),
    [(name, {}) for name in LADDER] + [("vmf_xxs", {"tokens_per_frame": True})],
)
def test_streaming_in_chunks_equals_the_whole_clip(name, overrides):
    model = _causal(name, **overrides)
    clip = torch.randn(2, 3, 12, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = model.forward_steps(clip)
    assert whole.shape == (2, 12, 5)
    assert whole.std() > 0.1  # not a comparison of constants
    for chunk in (1, 2, 3, 4):
        streamed, _ = _stream(model, clip, chunk)
        torch.testing.assert_close(streamed, whole, rtol=0, atol=1e-5)


def test_no_output_depends_on_a_later_frame():
    model = effvid.create_model("vmf_xxs", num_classes=5, causal=True).eval()
    clip = torch.randn(1, 3, 8, 64, 64)
    edited = clip.clone()
    edited[:, :, 5] += 1.0
    with torch.no_grad():
        change = (model.forward_steps(edited) - model.forward_steps(clip)).abs().amax(dim=(0, 2))
    assert change[:5].max() == 0 and change[5:].min() > 1e-6
    with torch.no_grad():  # the clip's logits are the mean of its frames'
        torch.testing.assert_close(model(clip), model.forward_steps(clip).mean(dim=1))


def test_memory_and_cost_per_frame_do_not_grow_with_the_stream():
    model = _causal("vmf_xxs")
    _, short_state = _stream(model, torch.randn(1, 3, 4, 64, 64), 1)
    _, long_state = _stream(model, torch.randn(1, 3, 40, 64, 64), 1)
    assert long_state.numel() == short_state.numel() > 0
    shapes = {name: tuple(t.shape) for name, t in long_state.tensors.items()}
    assert shapes == {name: tuple(t.shape) for name, t in short_state.tensors.items()}
    convs = [m for m in model.modules() if isinstance(m, CausalConv3d)]
    assert convs and all(shapes[m.stream_key][2] == m.kernel_size[0] - 1 for m in convs)
    assert shapes["features.1.global_block"] == (1, 3, 128)  # one frame of tokens


@pytest.mark.parametrize(
    "overrides", [dict(factorized_depthwise=True), dict(temporal_kernel=1)], ids=str
)
def test_streaming_with_other_switches(overrides):
    model = _causal("vmf_xxs", **overrides)
    clip = torch.randn(1, 3, 6, 64, 64)
    with torch.no_grad():
        whole = model.forward_steps(clip)
    torch.testing.assert_close(_stream(model, clip, 1)[0], whole, rtol=0, atol=1e-5)


def test_causal_trains_loads_other_checkpoints_and_refuses_what_cannot_stream():
    model = effvid.create_model("vmf_xxs", num_classes=5, causal=True)
    torch.nn.functional.cross_entropy(
        model(torch.randn(2, 3, 4, 64, 64)), torch.tensor([0, 1])
    ).backward()
    assert all(p.grad is not None for p in model.parameters())
    report = effvid.load_checkpoint(
        model, effvid.create_model("vmf_xxs", num_classes=5).state_dict()
    )
    assert not report.missing and not report.unexpected
    with pytest.raises(ValueError, match="stem_temporal_stride must be 1"):
        effvid.create_model("vmf_xxs", causal=True, stem_temporal_stride=2)
    with pytest.raises(ValueError, match="streams only when built with causal=True"):
        effvid.create_model("vmf_xxs").init_stream()
    with pytest.raises(ValueError, match="causal=True is for Video Mobile-Former"):
        effvid.create_model("mobileformer_52m", causal=True)
