"""The deployable streaming step of every causal VMF reproduces the eager stream step by step,
keeps every state and every intermediate tensor at most 4-D, and refuses what cannot stream."""

import pytest
import torch

import effvid
from effvid.deploy.deployable import DeployableError
from effvid.deploy.deployable_stream import deployable_stream_step
from tests.deploy.test_deployable import _with_norm_statistics

VMFS = effvid.list_models("vmf_*")
FRAME_SIZE = 64  # small frames keep the test fast; the step is built for any size


def _causal(name: str) -> torch.nn.Module:
    return _with_norm_statistics(effvid.create_model(name, num_classes=7, causal=True))


def _stream(step, state, clip, chunk):
    """The logits of `step(frames, state) -> (logits, state)` fed `clip` chunk by chunk."""
    outputs = []
    for start in range(0, clip.shape[2], chunk):
        logits, state = step(clip[:, :, start : start + chunk], state)
        outputs.append(logits)
    return outputs


def _deployable(step):
    """The deployable step with its states as one tuple, like the eager `stream_step`."""

    def run(frames, states):
        logits, *following = step(frames, *states)
        return logits, following

    return run


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("name", "chunk"),
    [
        pytest.param(name, 1, marks=[] if name in ("vmf_xxs", "vmf_xs") else [pytest.mark.edge])
        for name in VMFS
    ]
    + [("vmf_xxs", 4)],
)
def test_the_deployable_step_reproduces_the_eager_stream(name, chunk):
    model = _causal(name)
    step = deployable_stream_step(model, chunk=chunk, frame_size=FRAME_SIZE)
    clip = torch.randn(1, 3, 32, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = _stream(model.stream_step, model.init_stream(1), clip, chunk)
        got = _stream(_deployable(step), step.init_states(1), clip, chunk)
    assert len(got) == 32 // chunk
    for logits, reference in zip(got, expected, strict=True):
        assert logits.shape == (1, chunk, 7)
        torch.testing.assert_close(logits, reference, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_every_state_and_every_intermediate_tensor_is_at_most_4d():
    step = deployable_stream_step(_causal("vmf_xxs"), chunk=2, frame_size=FRAME_SIZE)
    inputs = step.example_inputs(batch=2)
    assert all(state.ndim <= 4 for state in inputs[1:])
    assert list(step.state_shapes(2).values()) == [tuple(state.shape) for state in inputs[1:]]
    exported = torch.export.export(step, inputs)
    graph = exported.graph
    frames = next(
        node for node in graph.nodes if node.name == exported.graph_signature.user_inputs[0]
    )
    wider = {
        node.name: tuple(node.meta["val"].shape)
        for node in graph.nodes
        if node is not frames
        and isinstance(node.meta.get("val"), torch.Tensor)
        and node.meta["val"].ndim > 4
    }
    assert wider == {}
    assert frames.meta["val"].shape == (2, 3, 2, FRAME_SIZE, FRAME_SIZE)  # the one 5-D input


def test_a_batch_of_streams_is_streamed_independently():
    step = deployable_stream_step(_causal("vmf_xxs"), frame_size=FRAME_SIZE)
    frames = torch.randn(
        2, 3, 1, FRAME_SIZE, FRAME_SIZE, generator=torch.Generator().manual_seed(4)
    )
    with torch.no_grad():
        logits, *states = step(frames, *step.init_states(2))
        alone, *_ = step(frames[1:], *step.init_states(1))
        again, *_ = step(frames, *states)
        alone_again, *_ = step(frames[1:], *(state.chunk(2)[1] for state in states))
    torch.testing.assert_close(logits[1:], alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(again[1:], alone_again, rtol=0, atol=1e-6)


def test_a_model_that_does_not_stream_is_refused():
    with pytest.raises(DeployableError, match="causal=True"):
        deployable_stream_step(effvid.create_model("vmf_xxs", num_classes=3), frame_size=64)
